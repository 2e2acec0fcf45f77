"""Network clients: always ask; deny when fed data from the command line or given exec options."""

from __future__ import annotations

import re

from llmos.security import shellrules as R
from llmos.security.programs.common import Handler
from llmos.security.shellargs import Context, Invocation, long_prefix_of
from llmos.security.shellwords import Word

NETWORK_CLIENTS = frozenset({
    "curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ssh", "scp", "sftp", "rsync",
    "ftp", "tftp", "http", "https", "xh", "aria2c", "lynx", "w3m", "links", "openssl", "dig",
    "nslookup", "host", "ping", "ping6", "traceroute", "mail", "mailx", "sendmail", "mutt",
    "gh", "aws", "gcloud", "az", "kubectl", "s3cmd", "rclone", "ncftp", "smbclient", "ldapsearch",
    "mosquitto_pub", "redis-cli", "psql", "mysql", "mongo", "mongosh", "whois", "nmap", "tcpdump",
})


_EXEC_OPTIONS: dict[str, tuple[str, ...]] = {
    "nc": ("-e", "-c", "--exec", "--sh-exec", "--lua-exec"),
    "ncat": ("-e", "-c", "--exec", "--sh-exec", "--lua-exec"),
    "netcat": ("-e", "-c"),
    "rsync": ("-e", "--rsh", "--rsync-path"),
    "scp": ("-S",),
    "sftp": ("-S", "-D"),
    "wget": ("--use-askpass",),
}


_SSH_EXEC_KEYS = re.compile(r"^(proxycommand|localcommand|permitlocalcommand|knownhostscommand|"
                            r"pkcs11provider|securitykeyprovider|remotecommand|proxyusefdpass|"
                            r"match)\b", re.IGNORECASE)


_CURL_WRITE = ("-o", "--output", "-c", "--cookie-jar", "-D", "--dump-header", "--trace",
               "--trace-ascii", "--stderr", "--libcurl", "--etag-save", "--hsts", "--alt-svc")


_CURL_READ = ("-K", "--config", "-T", "--upload-file", "--cacert", "--cert", "--key",
              "--netrc-file", "--etag-compare", "--proxy-cacert", "--data-binary", "--json")


_WGET_WRITE = ("-O", "--output-document", "-o", "--output-file", "-a", "--append-output",
               "-P", "--directory-prefix", "--save-cookies", "--warc-file")


_WGET_READ = ("--post-file", "--body-file", "-i", "--input-file", "--load-cookies",
              "--ca-certificate", "--certificate", "--private-key", "--config")


def _network(ctx: Context, inv: Invocation) -> None:
    inv.programs.add("network")
    ctx.add(R.NETWORK.verdict(f"{inv.name} talks to the network"))
    if inv.stage > 0 or inv.stdin in ("heredoc", "herestring"):
        ctx.add(R.EXFILTRATION.verdict(f"data from this command line is fed to {inv.name}"))
    args = inv.args
    for index, word in enumerate(args):
        text = word.text
        if text is None:
            ctx.add(R.EXFILTRATION.verdict(f"{inv.name} argument {word.raw} is computed at run "
                                           "time and sent over the network"))
            continue
        nxt = args[index + 1] if index + 1 < len(args) else None
        name, eq, value = text.partition("=")
        for option in _EXEC_OPTIONS.get(inv.name, ()):
            if text == option or (option.startswith("--") and long_prefix_of(text, (option,))) \
                    or (len(option) == 2 and text.startswith(option) and not text.startswith(
                        "--")):
                ctx.add(R.EXEC_FLAG.verdict(f"{inv.name} {option} runs a program"))
        if inv.name in ("ssh", "scp", "sftp") and text.startswith("-o"):
            option_text = text[2:] or (nxt.text if nxt is not None else "") or ""
            if _SSH_EXEC_KEYS.match(option_text.strip()):
                ctx.add(R.EXEC_FLAG.verdict(f"{inv.name} -o {option_text.split('=')[0]} runs a "
                                            "local command"))
        if inv.name == "socat" and re.match(r"(?i)^(exec|system):", text):
            ctx.add(R.EXEC_FLAG.verdict("socat EXEC:/SYSTEM: address runs a program"))
        if inv.name == "curl":
            _file_flag(ctx, name, eq, value, nxt, _CURL_WRITE, _CURL_READ)
            if name in ("-d", "--data", "--data-raw", "--data-urlencode", "-F", "--form") and (
                    (value if eq else (nxt.text if nxt else "")) or "").lstrip().find("@") >= 0:
                payload = (value if eq else (nxt.text if nxt else "")) or ""
                path = payload.split("@", 1)[1].split(";")[0]
                if path and path != "-":
                    ctx.check_path(Word.literal(path), "read")
        elif inv.name == "wget":
            _file_flag(ctx, name, eq, value, nxt, _WGET_WRITE, _WGET_READ)


def _file_flag(ctx: Context, name: str, eq: str, value: str, nxt: Word | None,
               write: tuple[str, ...], read: tuple[str, ...]) -> None:
    target = Word.literal(value) if eq else nxt
    if target is None or target.text in ("-",):
        return
    if name in write:
        ctx.check_path(target, "write")
    elif name in read:
        text = target.text or ""
        ctx.check_path(Word(text=text.lstrip("@"), raw=target.raw) if target.text is not None
                       else target, "read")


HANDLERS: dict[str, Handler] = {name: _network for name in NETWORK_CLIENTS}
