"""The local dashboard (``llmos ui``): read-only pages over the run log, traces, ledger,
dispatch log and audit log, with live updates, served on 127.0.0.1 behind a token.

``data`` reads the kernel's stores into plain rows; ``app`` is the Starlette application
(Jinja2 templates in ``templates/``, assets in ``static/``: Chart.js 4.6.1's
``dist/chart.umd.min.js`` and its MIT licence, from ``npm pack chart.js@4.6.1``, vendored so
nothing is fetched at run time); ``server`` runs it with uvicorn; ``plot`` draws
``llmos stats --plot/--png``.
"""
