"""``llmos daemon status|start|stop``: the per-user command daemon that makes short
commands fast (``llmos.daemon``; the ``llmos`` command starts it on demand)."""

from __future__ import annotations

import json
import sys
import time

import click

from llmos import client


def _where() -> tuple[str, str, str | None]:
    """(directory, socket path, why this process cannot use a daemon there or None)."""
    directory = client.daemon_dir()
    mine = client.attributes("self")
    path = client.socket_path(directory, client.socket_key(mine))
    return directory, path, client.unservable(mine) or client.check_dir(directory,
                                                                        create=False)


def _ask(path: str, op: str, timeout: float = 5.0) -> str | None:
    """The daemon's one-line answer to a control request; None when none listens."""
    sock = client.connect(path, client.attributes("self"), timeout=timeout)
    try:
        sock.settimeout(timeout)
        client.send_message(sock, {"op": op, "protocol": client.PROTOCOL})
        return client.Lines(sock).next()
    finally:
        sock.close()


def _state() -> dict:
    directory, path, refused = _where()
    state: dict = {"directory": directory, "socket": path, "running": False,
                   "enabled": not client.disabled_by_env(), "reason": None, "daemon": None}
    if refused:
        state["reason"] = f"the daemon's directory is refused: {refused}"
        return state
    try:
        answer = _ask(path, "status")
    except client.NoDaemon:
        state["reason"] = "not running (the next served command starts it)"
        return state
    except client.Refused as exc:
        state["reason"] = str(exc)
        return state
    except OSError as exc:
        state["reason"] = f"no answer: {exc}"
        return state
    if answer is None or answer.startswith("fallback"):
        state["reason"] = f"refused this process: {answer or 'no answer'}"
        return state
    state["running"] = True
    state["daemon"] = json.loads(answer)
    return state


@click.group()
def daemon() -> None:
    """The command daemon: a per-user pre-warmed fork server that runs short commands
    (run, route, plugins, tools, traces, runs, budget, config, stats) without paying the
    interpreter's start-up.

    The llmos command starts it on demand and falls back to running in process whenever
    the daemon could not run the command exactly as this process would (LLMOS_DAEMON=0
    turns it off; LLMOS_DAEMON_IDLE sets its idle exit, default 600 s; LLMOS_DAEMON_DIR
    its directory).
    """


@daemon.command()
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
def status(as_json: bool) -> None:
    """Whether the daemon runs, how many commands it served, and why not if it does not."""
    state = _state()
    if as_json:
        click.echo(json.dumps(state, indent=2))
        return
    if not state["enabled"]:
        click.echo("disabled by LLMOS_DAEMON (commands run in process)")
    if not state["running"]:
        click.echo(f"not serving: {state['reason']}")
        click.echo(f"socket: {state['socket']}")
        return
    d = state["daemon"]
    click.echo(f"running: pid {d['pid']}, up {d['uptime_s']:.0f} s (start-up "
               f"{d['startup_s']:.2f} s), {d['requests']} commands served, "
               f"{d['fallbacks']} fallbacks, {len(d['running'])} running now, "
               f"RSS {d['rss_bytes'] / 2**20:.0f} MiB, {d['modules']} modules")
    click.echo(f"socket: {d['socket']}")
    if d["stale"]:
        click.echo("stale: code changed since it started; it stops at the next command")
    for failure in d["preload_failed"]:
        click.echo(f"not preloaded: {failure}")


@daemon.command()
@click.option("--wait", "wait_s", type=float, default=30.0, show_default=True,
              help="Seconds to wait for it to listen.")
def start(wait_s: float) -> None:
    """Start the daemon now (the llmos command otherwise starts it on first use)."""
    directory, _path, refused = _where()
    refused = refused if refused and "no_new_privs" in refused else client.check_dir(
        directory, create=True)
    if refused:
        raise click.ClickException(f"cannot start the daemon: {refused}")
    if _state()["running"]:
        click.echo("already running")
        return
    client.spawn(sys.path[0] if sys.path else "")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        state = _state()
        if state["running"]:
            click.echo(f"running: pid {state['daemon']['pid']}")
            return
        time.sleep(0.05)
    raise click.ClickException(f"the daemon did not start within {wait_s:g} s "
                               f"(see {directory}/daemon.log)")


@daemon.command()
def stop() -> None:
    """Stop the daemon: it stops listening, and exits once the commands it runs end."""
    _directory, path, refused = _where()
    if refused:
        click.echo(f"not running: {refused}")
        return
    try:
        answer = _ask(path, "stop")
    except client.NoDaemon:
        click.echo("not running")
        return
    except (client.Refused, OSError) as exc:
        raise click.ClickException(f"cannot stop the daemon: {exc}") from None
    click.echo("stopped" if answer == "stopping" else f"not stopped: {answer}")

