"""``llmos quantum ...``: thin commands over the pack's server."""

from __future__ import annotations

import click


@click.group()
def quantum() -> None:
    """Quantum pack: a Qiskit Studio backend served through the llmos router."""


@quantum.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="TCP port.")
@click.option("--budget-usd", type=float, default=None,
              help="Set the battery's balance before serving (as `llmos budget set`).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, budget_usd: float | None) -> None:
    """Serve the Qiskit Studio frontend: /chat, /chat/stream, /codegen/chat, /run, /health.

    Point the frontend at it with NEXT_PUBLIC_API_URL=http://HOST:PORT/chat,
    NEXT_PUBLIC_PARAMETER_UPDATE_API_URL=http://HOST:PORT/codegen/chat and
    NEXT_PUBLIC_RUNCODE_URL=http://HOST:PORT/run.
    """
    import uvicorn

    from llmos_quantum.studio.app import create_app

    obj = ctx.find_root().obj or {}
    app = create_app(obj.get("workspace"), settings=obj.get("settings"), budget_usd=budget_usd)
    click.echo(f"llmos quantum: serving Qiskit Studio on http://{host}:{port} "
               f"(chat: /chat, code generation: /codegen/chat, run: /run)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
