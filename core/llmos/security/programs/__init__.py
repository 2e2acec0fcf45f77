"""What the shell policy knows about individual programs, one module per family.

Every module exports ``HANDLERS``: program name -> handler. A handler receives
the analyzer (``shellargs.Context``) and the ``Invocation`` and records findings:
``shell.allowlisted`` when the program, its flags and its paths are all known to
be safe, an ask or deny rule otherwise. Programs no module knows are handled
by ``common.unknown`` (ask, and dig for wrapped commands that would deny).
"""

from __future__ import annotations

from llmos.security.programs import (
    editors,
    environment,
    fileutils,
    find,
    git,
    interpreters,
    network,
    shells,
    system,
    textutils,
    wrappers,
)
from llmos.security.programs.common import Handler, unknown

# Later modules win a name clash: a dedicated handler beats a generic family one.
_ORDER = (system, network, interpreters, shells, wrappers, environment, fileutils, find, git,
          editors, textutils)
HANDLERS: dict[str, Handler] = {}
for _module in _ORDER:
    HANDLERS.update(_module.HANDLERS)

#: Extra checks that run after an allowlisted program's own handler.
EXEC_CHECKS: dict[str, Handler] = dict(textutils.EXEC_CHECKS)


def handler(name: str) -> Handler:
    """The handler for program ``name`` (exact name, then name patterns, then unknown)."""
    found = HANDLERS.get(name) or interpreters.handler_for(name) or system.handler_for(name)
    return found or unknown


__all__ = ["EXEC_CHECKS", "HANDLERS", "Handler", "handler", "unknown"]
