"""``llmos ui``: the local dashboard (read-only, 127.0.0.1, a token in the URL)."""

from __future__ import annotations

import click


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.pass_context
def ui(ctx: click.Context, port: int) -> None:
    """Serve the dashboard on 127.0.0.1 and print its URL (with its access token)."""
    from llmos.cli._common import kernel_from
    from llmos.ui.server import serve

    serve(kernel_from(ctx), port=port, echo=click.echo)
