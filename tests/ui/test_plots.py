"""``llmos stats --plot`` and ``--png``: the savings and hit-rate curves from the dispatch log."""

from __future__ import annotations

import pytest

from llmos.kernel import Kernel
from llmos.learning.stats import DispatchLog


@pytest.fixture
def logged(llmos_workspace):
    """A learned run, then two verified replays that each saved its cost."""
    log = DispatchLog(Kernel(llmos_workspace, load_entry_points=False).db)
    log.record(run_id="r1", mode="LEARNER", success=True, cost_usd=0.02)
    log.record(run_id="r2", mode="FOLLOWER", success=True, cost_usd=0.0, saved_usd=0.02,
               trace_id="t1")
    log.record(run_id="r3", mode="FOLLOWER", success=True, cost_usd=0.0, saved_usd=0.02,
               trace_id="t1")
    return log


def test_png_draws_spend_savings_and_hit_rate(logged, llmos_cli, tmp_path):
    from PIL import Image

    out = tmp_path / "stats.png"
    result = llmos_cli("stats", "--png", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "(3 runs)" in result.output
    image = Image.open(out)
    assert image.format == "PNG" and image.size == (800, 600)
    colors = {c for _, c in image.convert("RGB").getcolors(maxcolors=1 << 20)}
    assert (44, 160, 44) in colors  # the hit-rate curve (tab:green) was drawn
    assert (31, 119, 180) in colors and (255, 127, 14) in colors  # spend and savings


def test_plot_prints_the_curves_in_the_terminal(logged, llmos_cli):
    result = llmos_cli("stats", "--plot")
    assert result.exit_code == 0, result.output
    assert "hit rate" in result.output and "saved USD" in result.output
    assert len(result.output.splitlines()) >= 20


def test_png_into_a_missing_folder_says_so(logged, llmos_cli, tmp_path):
    result = llmos_cli("stats", "--png", str(tmp_path / "nope" / "x.png"))
    assert result.exit_code == 2 and "choose another --png" in result.output
    assert "Traceback" not in result.output


def test_nothing_to_plot_before_any_run(llmos_cli):
    result = llmos_cli("stats", "--plot")
    assert result.exit_code == 0 and "nothing to plot" in result.output
