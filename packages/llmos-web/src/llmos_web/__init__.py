"""llmos-web: a domain pack that lets llmos agents read the web.

Tools ``web_fetch`` and ``web_links``, a ``[web]`` config section and an SSRF guard in
``llmos_pre_tool_use``, all registered through the ``llmos`` entry point
(``llmos_web.plugin``), exactly as any third-party pack would.
"""

__version__ = "0.1.0"
