"""The scratch copy a simulation works in: llmos's state left out, links kept as links (a
link out of the workspace is not followed and copied), and no network for Bash."""

from __future__ import annotations

from llmos.modes.simulation import offline, scratch_copy
from llmos.workspace import Workspace


def test_the_copy_leaves_out_llmos_state_and_keeps_links(llmos_workspace, tmp_path):
    ws = Workspace.open(llmos_workspace)
    (ws.state_dir / "llmos.db").write_bytes(b"state")
    (llmos_workspace / "keep.txt").write_text("k")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big.bin").write_bytes(b"x" * 10)
    (llmos_workspace / "link").symlink_to(outside)
    project_state = llmos_workspace / "projects" / "alpha" / ws.state_dir.name
    project_state.mkdir(parents=True)
    (project_state / "memory.db").write_bytes(b"project memory")
    copy = scratch_copy(ws.root, tmp_path / "scratch-parent", ws.state_dir)
    assert (copy / "keep.txt").read_text() == "k"
    assert not (copy / ws.state_dir.name).exists()
    assert (copy / "projects" / "alpha").is_dir()
    assert not (copy / "projects" / "alpha" / ws.state_dir.name).exists()
    assert (copy / "link").is_symlink() and (copy / "link").readlink() == outside


def test_bash_has_no_network_in_a_simulation():
    settings = {"enabled": True, "network": {"allowedDomains": ["pypi.org"],
                                             "allowLocalBinding": False}}
    quiet = offline(settings)
    assert quiet["network"] == {"allowedDomains": [], "allowLocalBinding": False}
    assert settings["network"]["allowedDomains"] == ["pypi.org"]  # the original untouched
    assert offline(None) is None
