"""``llmos stats --plot`` (in the terminal, plotext) and ``--png FILE`` (matplotlib's Agg
renderer, no display needed): cumulative spend and savings, and the replay hit rate, run
after run. Both libraries are imported only when a plot is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmos.config import ConfigError


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"plotting needs {module.split('.')[0]}: pip install 'llmos[ui]'"
                          ) from None


def terminal(series: list[dict[str, Any]], width: int = 100, height: int = 24) -> str:
    """The curves as text for a terminal."""
    plt = _need("plotext")
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    runs = list(range(1, len(series) + 1))
    plt.plot(runs, [p["spend_usd"] for p in series], label="spent USD")
    plt.plot(runs, [p["saved_usd"] for p in series], label="saved USD")
    plt.plot(runs, [p["hit_rate"] for p in series], label="hit rate", yside="right")
    plt.title("llmos: spend, savings and replay hit rate")
    plt.xlabel("run")
    return str(plt.build())


def png(series: list[dict[str, Any]], out: Path) -> None:
    """The curves as a PNG image."""
    _need("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = list(range(1, len(series) + 1))
    figure = Figure(figsize=(8, 6), dpi=100)
    FigureCanvasAgg(figure)
    money, rate = figure.subplots(2, 1, sharex=True)
    money.plot(runs, [p["spend_usd"] for p in series], label="spent (USD)")
    money.plot(runs, [p["saved_usd"] for p in series], label="saved by replay (USD)")
    money.set_ylabel("USD, cumulative")
    money.legend(loc="upper left")
    money.set_title("llmos: spend, savings and replay hit rate")
    rate.plot(runs, [p["hit_rate"] for p in series], color="tab:green")
    rate.set_ylim(0, 1)
    rate.set_ylabel("replay hit rate")
    rate.set_xlabel("run")
    try:
        figure.savefig(out, format="png")
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}; choose another --png"
                          ) from None
