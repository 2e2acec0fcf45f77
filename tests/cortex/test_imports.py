"""What a LEARNER run imports beyond claude_agent_sdk: the metering proxy's httpx/httpcore
without their command-line tool (rich) or trio support (trio), which llmos never uses."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, sys
import llmos.cli  # installs llmos's cheap imports, as the llmos command does
import claude_agent_sdk
import llmos.cortex.learner, llmos.cortex.proxy, llmos.cortex.bridge
import httpx, httpcore

loaded = sorted(m for m in sys.modules if m.partition(".")[0] in ("rich", "trio", "pygments"))

import asyncio
from llmos.testing.model_server import Script, ScriptedModelServer  # (pytest: pygments)

async def ask(url):
    async with httpx.AsyncClient() as client:  # what the proxy builds, plain http
        return (await client.post(url + "/v1/messages/count_tokens", json={})).status_code

with ScriptedModelServer(Script()) as server:
    status = asyncio.run(ask(server.base_url))
print(json.dumps({"loaded": loaded, "status": status,
                  "stub": type(httpx.main).__name__ == "function"}))  # not click's
"""


def probe(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_learner_path_imports_neither_rich_nor_trio_and_httpx_still_works():
    found = probe(PROBE)
    assert found == {"loaded": [], "status": 200, "stub": True}


def test_rich_and_trio_import_normally_afterwards_and_httpx_keeps_its_tool_if_loaded_first():
    after = probe(PROBE.replace("loaded = sorted", "import rich.console, trio\nloaded = sorted"))
    assert "rich.console" in after["loaded"] and "trio" in after["loaded"]
    first = probe(PROBE.replace("import claude_agent_sdk\n", "import claude_agent_sdk\n"
                                "import pygments.lexers, rich.console\n"))
    assert first["status"] == 200 and not first["stub"]  # its tool: what it needs was there
