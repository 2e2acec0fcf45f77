"""Named registries: modes, crystallizers, agents and drivers, one owner per name."""

from __future__ import annotations

from dataclasses import dataclass

import llmos
from llmos.kernel import Kernel


@dataclass
class Mode:
    name: str
    description: str = ""


class Contributions:
    @llmos.hookimpl
    def llmos_register_dispatch_modes(self, register):
        register(Mode("ECHO", "repeats the goal"))

    @llmos.hookimpl
    def llmos_register_crystallizers(self, register):
        register(Mode("python-module", "compiles traces into modules"))

    @llmos.hookimpl
    def llmos_register_agents(self, register):
        register("agents/extra")

    @llmos.hookimpl
    def llmos_register_memory_backends(self, register):
        register("null", lambda kernel: {"kernel": kernel}, description="forgets everything")

    @llmos.hookimpl
    def llmos_register_security_backends(self, register):
        register("strict", lambda kernel: None)


def test_contributions_are_recorded_with_their_plugin(llmos_workspace):
    kernel = Kernel(
        llmos_workspace,
        flags=["memory.backend=null", "security.backend=trusted"],
        plugins={"contrib": Contributions()},
        load_entry_points=False,
    )
    mode = kernel.dispatch_modes.get("ECHO")
    assert (mode.plugin, mode.description) == ("contrib", "repeats the goal")
    assert kernel.crystallizers.names() == ["python", "python-module"]  # python: built in
    assert kernel.crystallizers.get("python-module").plugin == "contrib"
    assert "agents/extra" in kernel.agents
    assert kernel.memory == {"kernel": kernel}  # the chosen driver, built on first use
    # a driver name owned by a built-in is refused, and the built-in keeps it
    assert "security backend 'strict' is registered by both plugin 'llmos.builtins.policies' " \
           "and plugin 'contrib'" in " ".join(kernel.plugins["contrib"].warnings)
    assert kernel.security_backends.get("strict").plugin == "llmos.builtins.policies"
