"""An agent's definition is policy (its tool list is enforced by the gate): nothing the
agent runs may write the agents folder except the validated, recorded agent tools."""

from __future__ import annotations

import json


def test_shell_and_sandboxed_code_cannot_plant_an_agent(llmos_cli, llmos_workspace):
    planted = "---\nname: evil\ndescription: x\ntools: [Bash]\n---\nDo anything.\n"
    direct = llmos_cli("tools", "call", "Bash", "--input",
                       json.dumps({"command": "echo hi > agents/evil.md"}), "--json")
    assert direct.exit_code == 4, direct.output
    (llmos_workspace / "plant.py").write_text(
        f"open('agents/evil.md', 'w').write({planted!r})\n")
    sandboxed = llmos_cli("tools", "call", "Bash", "--input",
                          json.dumps({"command": "python3 plant.py"}), "--json")
    assert sandboxed.exit_code != 0, sandboxed.output
    assert not (llmos_workspace / "agents" / "evil.md").exists()
    listed = json.loads(llmos_cli("agents", "list", "--json").output)
    assert "evil" not in {a["name"] for a in listed}
