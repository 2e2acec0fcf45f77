"""``llmos robo``: serve the HTTP/WebSocket API, release the e-stop, arrange the scene.

These are the human's commands: ``reset`` is the only way (with ``POST /reset`` and its
token) to release the emergency stop.
"""

from __future__ import annotations

import json

import click


def _ctx_obj(ctx: click.Context) -> dict:
    return ctx.find_root().obj or {}


def _kernel(ctx: click.Context):
    from llmos.cli._common import kernel_from

    return kernel_from(ctx)


@click.group()
def robo() -> None:
    """Robot arm control (llmos-robo): serve, reset, place, safety."""


@robo.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--operator-token", default=None,
              help="Token that POST /reset requires (default: a new random one, printed).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, operator_token: str | None) -> None:
    """Serve GET /state, /safety, /camera/{view}.png, POST /command, /move, /gripper,
    /emergency, /reset and WS /ws; every call goes through the kernel's gate."""
    import secrets

    import uvicorn

    from llmos_robo.server import build_app

    kernel = _kernel(ctx)  # validates the config before anything starts
    kernel.config.section("robo")
    obj = _ctx_obj(ctx)
    token = operator_token or secrets.token_urlsafe(18)
    app = build_app(kernel.workspace.root, list(obj.get("settings") or []), token)
    click.echo(f"llmos robo: http://{host}:{port}  (operator token for POST /reset: {token})",
               err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", ws="websockets")


@robo.command()
@click.option("--world", is_flag=True, help="Also reset the scene and put the arm at home.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def reset(ctx: click.Context, world: bool, yes: bool, as_json: bool) -> None:
    """Release the emergency stop (a human's decision) through the gate."""
    from llmos.cli._common import run

    kernel = _kernel(ctx)
    if not yes:
        click.confirm("Release the emergency stop? Check that the robot's surroundings are "
                      "safe first.", abort=True)

    async def go():
        async with kernel:
            return await kernel.call_tool("robot_reset", {"world": world}, source="cli")

    result = run(go())
    if as_json:
        click.echo(json.dumps({"ok": not result.is_error, "output": result.output,
                               "error": result.error or None}, indent=2))
    elif result.is_error:
        click.echo(f"error: {result.error}", err=True)
    else:
        click.echo("emergency stop released" + (" and the scene reset" if world else ""))
    if result.is_error:
        ctx.exit(4 if result.decision and result.decision.verdict != "allow" else 1)


@robo.command()
@click.argument("name")
@click.argument("x", type=float)
@click.argument("y", type=float)
@click.pass_context
def place(ctx: click.Context, name: str, x: float, y: float) -> None:
    """Move a scene object by hand to X, Y on the table (the simulator's 'person')."""
    from llmos.cli._common import run

    from llmos_robo.runtime import robot_for

    kernel = _kernel(ctx)

    async def go():
        async with kernel:
            robot = robot_for(kernel)
            driver = robot.driver()
            if name not in driver.objects:
                raise click.UsageError(
                    f"no object named {name!r}; the scene has {', '.join(driver.objects)}")
            driver.place_object(name, x, y)
            robot.save_world()
            return driver.object_poses()[name]

    click.echo(json.dumps(run(go())))


@robo.command()
@click.pass_context
def safety(ctx: click.Context) -> None:
    """Show the safety envelope and the e-stop state as JSON."""
    from llmos_robo.runtime import estop_for

    kernel = _kernel(ctx)
    cfg = kernel.config.section("robo")
    click.echo(json.dumps({"estop": estop_for(kernel).state(), **cfg.model_dump()}, indent=2))
