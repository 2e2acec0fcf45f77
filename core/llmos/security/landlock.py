"""Landlock: confine this process, then exec a command. Standard library only.

Run as a script (``python -I landlock.py --write DIR --read DIR -- argv...``) so
the restriction is applied in a fresh process between fork and exec, without a
``preexec_fn`` (which is unsafe in threaded programs such as an async kernel).

What it enforces, by ABI version of the running kernel:

* every ABI: reads and executes only beneath the ``--read`` and ``--write``
  roots; writes, deletes and creations only beneath the ``--write`` roots;
* ABI 2+: no renaming or linking files across those roots (REFER);
* ABI 3+: truncation counts as a write;
* ABI 4+: no TCP bind or connect unless ``--allow-network`` (UDP is not covered);
* ABI 6+: no signals to, and no abstract unix sockets of, processes outside.

``abi_version()`` returns 0 when Landlock is missing or disabled.
"""

from __future__ import annotations

import ctypes
import os
import sys

_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_PR_SET_NO_NEW_PRIVS = 38
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13
TRUNCATE = 1 << 14
NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

_FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("allowed_access", ctypes.c_uint64),
        ("parent_fd", ctypes.c_int32),
    ]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The Landlock ABI version of the running kernel, or 0 when unavailable."""
    result = _libc().syscall(ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0),
                             ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return int(result) if result > 0 else 0


def _fs_rights(abi: int) -> tuple[int, int]:
    """(read rights, write rights) this ABI can handle."""
    read = EXECUTE | READ_FILE | READ_DIR
    write = (WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG | MAKE_SOCK
             | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM)
    if abi >= 2:
        write |= REFER
    if abi >= 3:
        write |= TRUNCATE
    return read, write


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock {what}: {os.strerror(err)}")
    return result


def restrict(read_roots: list[str], write_roots: list[str], *, allow_network: bool) -> int:
    """Confine the calling process (and its future children); returns the ABI used."""
    abi = abi_version()
    if abi < 1:
        raise OSError("Landlock is not available in this kernel")
    libc = _libc()
    read, write = _fs_rights(abi)
    attr = _RulesetAttr(handled_access_fs=read | write, handled_access_net=0, scoped=0)
    size = 8
    if abi >= 4:
        size = 16
        if not allow_network:
            attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
    if abi >= 6:
        size = 24
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    ruleset = _check(libc.syscall(ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr),
                                  ctypes.c_size_t(size), ctypes.c_uint32(0)), "create_ruleset")
    try:
        for roots, rights in ((read_roots, read), (write_roots, read | write)):
            for root in roots:
                _add_path(libc, int(ruleset), root, rights)
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _check(libc.syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(ruleset),
                            ctypes.c_uint32(0)), "restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _add_path(libc: ctypes.CDLL, ruleset: int, root: str, rights: int) -> None:
    try:
        fd = os.open(root, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(root):
            rights &= _FILE_ONLY
        rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        _check(libc.syscall(ctypes.c_long(_SYS_ADD_RULE), ctypes.c_int(ruleset),
                            ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule),
                            ctypes.c_uint32(0)), f"add_rule {root}")
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    """``--read DIR``/``--write DIR`` (repeatable), ``--allow-network``, ``--`` then argv."""
    reads: list[str] = []
    writes: list[str] = []
    allow_network = False
    index = 0
    while index < len(argv) and argv[index] != "--":
        flag = argv[index]
        if flag == "--allow-network":
            allow_network = True
            index += 1
        elif flag in ("--read", "--write") and index + 1 < len(argv):
            (reads if flag == "--read" else writes).append(argv[index + 1])
            index += 2
        else:
            print(f"landlock: unknown argument {flag!r}", file=sys.stderr)
            return 125
    command = argv[index + 1:]
    if not command:
        print("landlock: no command given", file=sys.stderr)
        return 125
    try:
        restrict(reads, writes, allow_network=allow_network)
    except OSError as exc:
        print(f"landlock: refusing to run unconfined: {exc}", file=sys.stderr)
        return 125
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"landlock: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
