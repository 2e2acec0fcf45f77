"""Programs that change the machine (deny) and interactive programs that can spawn shells (ask)."""

from __future__ import annotations

from llmos.security import shellrules as R
from llmos.security.programs.common import Handler
from llmos.security.shellargs import Context, Invocation

SYSTEM_PROGRAMS = frozenset({
    "mkfs", "mke2fs", "mkswap", "swapon", "swapoff", "fdisk", "sfdisk", "cfdisk", "gdisk",
    "parted", "wipefs", "blkdiscard", "shutdown", "reboot", "halt", "poweroff", "init",
    "telinit", "mount", "umount", "insmod", "rmmod", "modprobe", "sysctl", "iptables",
    "ip6tables", "nft", "ufw", "crontab", "at", "batch", "useradd", "userdel", "usermod",
    "groupadd", "groupdel", "passwd", "chpasswd", "visudo", "chattr", "setenforce", "hwclock",
    "kexec", "dmsetup", "cryptsetup", "losetup", "debugfs", "killall5", "systemctl", "service",
    "launchctl", "chsh", "update-alternatives", "ldconfig", "setcap", "mknod", "pivot_root",
    "switch_root", "sudoedit", "vipw", "vigr",
})


INTERACTIVE_PROGRAMS = frozenset({
    "less", "more", "most", "pg", "vim", "vi", "nvim", "view", "nano", "pico", "emacs", "ed",
    "ex", "man", "info", "top", "htop", "watch", "tmux", "screen", "mc", "ranger", "gdb", "lldb",
    "pdb", "ipython", "bpython", "jupyter", "sqlite3", "bc", "dc", "ftp",
})


def _system(ctx: Context, inv: Invocation) -> None:
    ctx.add(R.SYSTEM.verdict(f"{inv.name} changes the machine"))


def _kill(ctx: Context, inv: Invocation) -> None:
    texts = [w.text for w in inv.args]
    if any(t is None for t in texts) or any(t in ("-1", "1", "0", "-0") for t in texts[1:]) or (
            texts and texts[0] in ("1", "0")):
        ctx.add(R.SYSTEM.verdict(f"{inv.name} of process 1, 0 or -1 kills everything"))
        return
    ctx.add(R.UNKNOWN_PROGRAM.verdict(f"{inv.name} signals other processes"))


def _interactive(ctx: Context, inv: Invocation) -> None:
    ctx.add(R.INTERACTIVE.verdict(f"{inv.name} is interactive and can start a shell"))


HANDLERS: dict[str, Handler] = {
    **{name: _interactive for name in INTERACTIVE_PROGRAMS},
    **{name: _system for name in SYSTEM_PROGRAMS},
    "kill": _kill, "pkill": _kill, "killall": _kill,
}


def handler_for(name: str) -> Handler | None:
    """mkfs.ext4, fsck.vfat and friends."""
    return _system if name.startswith(("mkfs", "fsck")) else None
