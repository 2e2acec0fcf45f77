"""Read-only file and text tools (ls, cat, grep, rg, diff, sort, ...) and inert builtins.

Recursion caveat: ``grep -r``, ``diff -r``, ``du`` and ``ls -R`` check their operands,
not every file they reach; GNU grep -r and ls -R do not follow symlinks below the
operands, diff -r does. The OS sandbox is the boundary for what a recursive reader
can see.
"""

from __future__ import annotations

import math
import re

from llmos.security import shellrules as R
from llmos.security.programs.common import (
    Handler,
    approve,
    pattern_then,
    report_unknown,
    run_spec,
    simple,
)
from llmos.security.shellargs import (
    Context,
    FlagSpec,
    Invocation,
    ParsedArgs,
    Role,
    long_prefix_of,
    parse_flags,
    spec,
)
from llmos.security.shellwords import Word

LS = spec("1aAbBcCdDfFgGhHikLlmnNopqQrRsStuUvxXZ", "IwT",
          "all almost-all author escape directory file-type full-time group-directories-first "
          "no-group human-readable si dereference-command-line "
          "dereference-command-line-symlink-to-dir dereference numeric-uid-gid literal "
          "hide-control-chars show-control-chars quote-name recursive reverse size inode "
          "context zero help version",
          "ignore hide block-size format indicator-style quoting-style sort time time-style "
          "tabsize width", "color colour hyperlink classify")


CAT = spec("AbeEnstTuv", "", "show-all number-nonblank show-ends number squeeze-blank "
           "show-tabs show-nonprinting help version")


HEAD = spec("qvz", "nc", "quiet silent verbose zero-terminated help version", "lines bytes",
            numeric=True)


TAIL = spec("qvzfF", "ncs", "quiet silent verbose zero-terminated retry help version",
            "lines bytes pid sleep-interval max-unchanged-stats", "follow", numeric=True)


WC = spec("clmwL", "", "bytes chars lines words max-line-length help version",
          "files0-from total", roles={"--files0-from": "read"})


GREP = spec("EFGPiyvwxclLoqsbHhnTZzUarI", "efmABCdD",
            "extended-regexp fixed-strings basic-regexp perl-regexp ignore-case no-ignore-case "
            "word-regexp line-regexp null-data no-messages invert-match version help byte-offset "
            "line-number no-line-number line-buffered with-filename no-filename only-matching "
            "quiet silent text recursive initial-tab null count files-with-matches "
            "files-without-match",
            "regexp file max-count label binary-files directories exclude include exclude-dir "
            "exclude-from after-context before-context context group-separator",
            "color colour", numeric=True,
            roles={"-f": "read", "--file": "read", "--exclude-from": "read"})


RG = spec("iIlnNsSvwxcqHhoFUuap0", "eftgTABCmMdjrE",
          "hidden no-ignore no-ignore-vcs no-ignore-parent no-ignore-dot files "
          "files-with-matches files-without-match count count-matches json vimgrep line-number "
          "no-line-number ignore-case smart-case case-sensitive fixed-strings word-regexp "
          "line-regexp invert-match only-matching multiline multiline-dotall no-heading heading "
          "with-filename no-filename stats type-list null text trim no-messages column "
          "no-column no-config one-file-system unrestricted debug quiet pcre2 crlf passthru "
          "byte-offset no-unicode help version",
          "regexp file glob iglob type type-not max-count max-depth max-filesize after-context "
          "before-context context replace sort sortr threads max-columns encoding colors "
          "context-separator field-match-separator path-separator", "color",
          roles={"-f": "read", "--file": "read"})


DIFF = spec("qscuyeniEZbwBaNprtTdl", "CUWIFxXSDL",
            "brief report-identical-files normal ed rcs side-by-side left-column "
            "suppress-common-lines show-c-function ignore-case ignore-file-name-case "
            "no-ignore-file-name-case ignore-tab-expansion ignore-trailing-space "
            "ignore-space-change ignore-all-space ignore-blank-lines text strip-trailing-cr "
            "recursive no-dereference new-file unidirectional-new-file expand-tabs initial-tab "
            "minimal speed-large-files suppress-blank-empty paginate help version",
            "label exclude exclude-from ignore-matching-lines width tabsize from-file to-file "
            "starting-file show-function-line horizon-lines", "color unified context",
            roles={"-X": "read", "--exclude-from": "read", "--from-file": "read",
                   "--to-file": "read"})


CMP = spec("blsz", "in", "print-bytes verbose quiet silent zero-terminated help version",
           "ignore-initial bytes")


COMM = spec("123z", "", "check-order nocheck-order zero-terminated total help version",
            "output-delimiter")


SORT = spec("bdfgiMhnRrVcCsumz", "ktSTo",
            "ignore-leading-blanks dictionary-order ignore-case general-numeric-sort "
            "ignore-nonprinting month-sort human-numeric-sort numeric-sort random-sort reverse "
            "version-sort merge stable unique zero-terminated debug help version",
            "key field-separator buffer-size temporary-directory output parallel batch-size "
            "random-source files0-from sort", "check",
            roles={"-o": "write", "--output": "write", "-T": "write",
                   "--temporary-directory": "write", "--random-source": "read",
                   "--files0-from": "read"})


UNIQ = spec("cdDiuz", "fsw", "count repeated unique ignore-case zero-terminated help version",
            "skip-fields skip-chars check-chars", "all-repeated group", numeric=True)


CUT = spec("snz", "bcdf", "complement only-delimited zero-terminated help version",
           "bytes characters delimiter fields output-delimiter")


TR = spec("cCdstz", "", "complement delete squeeze-repeats truncate-set1 help version")


TAC = spec("br", "s", "before regex help version", "separator")


FOLD = spec("bs", "w", "bytes spaces help version", "width", numeric=True)


PASTE = spec("sz", "d", "serial zero-terminated help version", "delimiters")


COLUMN = spec("tJnxeLR", "sOcNHWodrE", "table json keep-empty-lines fillrows help version",
              "separator output-separator output-width table-columns table-name")


NL = spec("p", "bdfhilnsvw", "no-renumber help version",
          "body-numbering section-delimiter footer-numbering header-numbering line-increment "
          "join-blank-lines number-format number-separator starting-line-number number-width")


EXPAND = spec("i", "t", "initial help version", "tabs", numeric=True)


JOIN = spec("iz", "aetov12", "ignore-case check-order nocheck-order header zero-terminated "
            "help version")


BASE64 = spec("dio", "w", "decode ignore-garbage help version", "wrap")


SUMS = spec("bctwz", "", "binary check tag text ignore-missing quiet status strict warn zero "
            "help version")


OD = spec("bcdfiloxsv", "AjNtSw", "output-duplicates traditional help version",
          "address-radix skip-bytes read-bytes format strings width")


HEXDUMP = spec("bcCdoxv", "efns", "help version")


STRINGS = spec("adfw", "ntTeo", "all print-file-name include-all-whitespace help version",
               "bytes radix encoding target", numeric=True)


FILE = spec("bcdEhiIkLlNnprsSvzZ0", "eFmfP",
            "brief checking-printout debug extension mime mime-type mime-encoding keep-going "
            "list dereference no-dereference no-buffer no-pad preserve-date raw special-files "
            "uncompress uncompress-noreport print0 help version",
            "exclude exclude-quiet separator magic-file files-from parameter",
            roles={"-m": "read", "--magic-file": "read", "-f": "read", "--files-from": "read"})


STAT = spec("fLt", "c", "dereference file-system terse help version", "format printf cached")


DU = spec("0abchHklmsSxDP", "dtBX",
          "null all apparent-size bytes total dereference-args human-readable inodes si "
          "summarize separate-dirs one-file-system count-links no-dereference help version",
          "max-depth threshold block-size exclude exclude-from files0-from", "time",
          roles={"-X": "read", "--exclude-from": "read", "--files0-from": "read"})


DF = spec("ahHiklPTv", "BtxF", "all human-readable si inodes local portability print-type "
          "sync no-sync total help version", "block-size type exclude-type", "output")


TREE = spec("adfipsughDFqNQrtcUvCnJAS", "LIPH",
            "noreport dirsfirst gitignore prune matchdirs ignore-case du si help version",
            "charset filelimit timefmt sort")


REALPATH = spec("eLmPqsz", "", "canonicalize-existing canonicalize-missing logical physical "
                "quiet strip no-symlinks zero help version", "relative-to relative-base",
                roles={"--relative-to": "read", "--relative-base": "read"})


READLINK = spec("femnqsvz", "", "canonicalize canonicalize-existing canonicalize-missing "
                "no-newline quiet silent verbose zero help version")


BASENAME = spec("az", "s", "multiple zero help version", "suffix")


DIRNAME = spec("z", "", "zero help version")


PWD = spec("LP", "", "help version")


ID = spec("aGgnruzZ", "", "context group groups name real user zero help version")


UNAME = spec("asnrvmpio", "", "all kernel-name nodename kernel-release kernel-version machine "
             "processor hardware-platform operating-system help version")


SEQ = spec("w", "sf", "equal-width help version", "separator format")


NPROC = spec("", "", "all help version", "ignore")


WHICH = spec("as", "", "all skip-alias skip-functions help version")


def _uniq_roles(parsed: ParsedArgs) -> list[tuple[Word, Role]]:
    roles: list[Role] = ["read", "write"]
    return [(w, roles[min(i, 1)]) for i, w in enumerate(parsed.operands)]


def _xxd(ctx: Context, inv: Invocation) -> None:
    flags = spec("abCeEiupr", "cgloNs", "autoskip bits capitalize little-endian ebcdic include "
                 "uppercase postscript plain revert help version", numeric=False)
    parsed = parse_flags(flags, [_xxd_long(w) for w in inv.args])
    report_unknown(ctx, inv, parsed)
    roles: list[Role] = ["read", "write"]
    for index, word in enumerate(parsed.operands):
        ctx.check_path(word, roles[min(index, 1)])
    approve(ctx, inv)


def _xxd_long(word: Word) -> Word:
    """xxd spells long options with one dash (-ps, -plain, -revert)."""
    if word.text in ("-ps", "-plain", "-postscript"):
        return Word.literal("-p")
    if word.text in ("-revert",):
        return Word.literal("-r")
    return word


def _echo(ctx: Context, inv: Invocation) -> None:
    approve(ctx, inv, "echo only prints its arguments")


def _printf(ctx: Context, inv: Invocation) -> None:
    if inv.args and inv.args[0].text is not None and inv.args[0].text.startswith("-v"):
        ctx.add(R.ASSIGNMENT.verdict("printf -v assigns a shell variable"))
        return
    if inv.args and inv.args[0].dynamic:
        ctx.add(R.DYNAMIC_VALUE.verdict("printf's format comes from an expansion"))
    approve(ctx, inv, "printf only prints its arguments")


def _no_operands(flags: FlagSpec, what: str) -> Handler:
    def handler(ctx: Context, inv: Invocation) -> None:
        parsed = parse_flags(flags, inv.args)
        report_unknown(ctx, inv, parsed)
        if parsed.operands:
            ctx.add(R.SYSTEM.verdict(f"{inv.name} with an operand {what}"))
            return
        approve(ctx, inv)
    return handler


def _inert(ctx: Context, inv: Invocation) -> None:
    approve(ctx, inv, f"{inv.name} does nothing but return a status")


def _sleep(ctx: Context, inv: Invocation) -> None:
    if all(w.text is not None and re.fullmatch(r"[0-9.]+[smhd]?|inf(inity)?", w.text)
           for w in inv.args):
        approve(ctx, inv)
    else:
        ctx.add(R.UNKNOWN_FLAG.verdict("sleep takes durations only"))


SEQ_MAX_LINES = 100_000_000


def _seq(ctx: Context, inv: Invocation) -> None:
    """``seq [FIRST [STEP]] LAST``: fine unless it never ends (``inf``, a zero step) or
    prints more than ``SEQ_MAX_LINES`` lines (an unbounded producer)."""
    run_spec(ctx, inv, SEQ, "text")
    operands = parse_flags(SEQ, inv.args).operands
    try:
        values = [float(w.text) for w in operands if w.text is not None]
    except ValueError:
        return  # seq itself refuses a non-number
    if len(values) != len(operands) or not 1 <= len(values) <= 3:
        if len(values) != len(operands):
            ctx.add(R.UNBOUNDED_PRODUCER.verdict("seq with a bound computed at run time"))
        return
    first, step, last = (1.0, 1.0, values[0]) if len(values) == 1 else (
        (values[0], 1.0, values[1]) if len(values) == 2 else tuple(values))
    finite = all(math.isfinite(v) for v in values) and step != 0
    if not finite or (last - first) / step > SEQ_MAX_LINES:
        shown = " ".join(w.raw for w in operands)
        ctx.add(R.UNBOUNDED_PRODUCER.verdict(
            f"seq {shown} never ends or prints more than {SEQ_MAX_LINES} lines"))


def _date(ctx: Context, inv: Invocation) -> None:
    flags = spec("uR", "dfrI", "utc universal rfc-email help version debug",
                 "date file reference rfc-3339", "iso-8601",
                 roles={"-f": "read", "--file": "read", "-r": "read", "--reference": "read"})
    if any(w.text is not None and (w.text.startswith("-s") or long_prefix_of(w.text, ("--set",)))
           for w in inv.args):
        ctx.add(R.SYSTEM.verdict("date -s/--set changes the system clock"))
        return
    parsed = parse_flags(flags, inv.args)
    for word in parsed.operands:
        if word.text is None or not word.text.startswith("+"):
            ctx.add(R.SYSTEM.verdict("date with a non-format operand sets the system clock"))
            return
    run_spec(ctx, inv, flags, "text")


def _cd(ctx: Context, inv: Invocation) -> None:
    parsed = parse_flags(spec("LPe@"), inv.args)
    report_unknown(ctx, inv, parsed)
    if len(parsed.operands) != 1 or parsed.operands[0].text in (None, "-"):
        ctx.add(R.READ_OUTSIDE.verdict("cd without a static workspace directory leaves the "
                                       "workspace (home, previous directory or unknown)"))
        ctx.enter_directory(Word.unknown("<cd>"))
        return
    ctx.enter_directory(parsed.operands[0])
    approve(ctx, inv, "cd into a workspace directory")


def _sort_exec(ctx: Context, inv: Invocation) -> None:
    for word in inv.args:
        if word.text is not None and long_prefix_of(word.text, ("--compress-program",)):
            ctx.add(R.EXEC_FLAG.verdict("sort --compress-program runs a program"))
            return


def _rg_exec(ctx: Context, inv: Invocation) -> None:
    for word in inv.args:
        if word.text is not None and word.text.partition("=")[0] in ("--pre", "--pre-glob"):
            ctx.add(R.EXEC_FLAG.verdict("rg --pre runs a program on every file"))
            return


HANDLERS: dict[str, Handler] = {
    "ls": simple(LS, "read", glob_ok=True),
    "dir": simple(LS, "read", glob_ok=True),
    "cat": simple(CAT, "read", glob_ok=True),
    "head": simple(HEAD, "read", glob_ok=True),
    "tail": simple(TAIL, "read", glob_ok=True),
    "wc": simple(WC, "read", glob_ok=True),
    "grep": simple(GREP, pattern_then("read", ("-e", "--regexp", "-f", "--file")),
                    glob_ok=True),
    "egrep": simple(GREP, pattern_then("read", ("-e", "--regexp", "-f", "--file")),
                     glob_ok=True),
    "fgrep": simple(GREP, pattern_then("read", ("-e", "--regexp", "-f", "--file")),
                     glob_ok=True),
    "rg": simple(RG, pattern_then("read", ("-e", "--regexp", "-f", "--file")),
                  exec_capable=True),
    "diff": simple(DIFF, "read", glob_ok=True),
    "cmp": simple(CMP, "read", glob_ok=True),
    "comm": simple(COMM, "read", glob_ok=True),
    "sort": simple(SORT, "read", exec_capable=True),
    "uniq": simple(UNIQ, _uniq_roles),
    "cut": simple(CUT, "read", glob_ok=True),
    "tr": simple(TR, "text"),
    "tac": simple(TAC, "read", glob_ok=True),
    "rev": simple(spec("", "", "help version"), "read", glob_ok=True),
    "fold": simple(FOLD, "read", glob_ok=True),
    "paste": simple(PASTE, "read", glob_ok=True),
    "column": simple(COLUMN, "read", glob_ok=True),
    "nl": simple(NL, "read", glob_ok=True),
    "expand": simple(EXPAND, "read", glob_ok=True),
    "unexpand": simple(EXPAND, "read", glob_ok=True),
    "join": simple(JOIN, "read"),
    "base64": simple(BASE64, "read"),
    "md5sum": simple(SUMS, "read", glob_ok=True),
    "sha1sum": simple(SUMS, "read", glob_ok=True),
    "sha256sum": simple(SUMS, "read", glob_ok=True),
    "sha512sum": simple(SUMS, "read", glob_ok=True),
    "b2sum": simple(SUMS, "read", glob_ok=True),
    "cksum": simple(SUMS, "read", glob_ok=True),
    "od": simple(OD, "read", glob_ok=True),
    "hexdump": simple(HEXDUMP, "read", glob_ok=True),
    "xxd": _xxd,
    "strings": simple(STRINGS, "read", glob_ok=True),
    "file": simple(FILE, "read", glob_ok=True),
    "stat": simple(STAT, "read", glob_ok=True),
    "du": simple(DU, "read", glob_ok=True),
    "df": simple(DF, "read"),
    "tree": simple(TREE, "read"),
    "realpath": simple(REALPATH, "read"),
    "readlink": simple(READLINK, "read"),
    "basename": simple(BASENAME, "text"),
    "dirname": simple(DIRNAME, "text"),
    "pwd": simple(PWD, "text"),
    "id": simple(ID, "text"),
    "whoami": simple(spec("", "", "help version"), "text"),
    "uname": simple(UNAME, "text"),
    "arch": simple(spec("", "", "help version"), "text"),
    "nproc": simple(NPROC, "text"),
    "seq": _seq,
    "which": simple(WHICH, "text"),
    "hostname": _no_operands(spec("sfiIdAa", "", "short fqdn ip-address all-ip-addresses "
                                  "domain all-fqdns alias"), "changes the host name"),
    "echo": _echo,
    "printf": _printf,
    "true": _inert,
    "false": _inert,
    ":": _inert,
    "sleep": _sleep,
    "date": _date,
    "cd": _cd,
}


EXEC_CHECKS: dict[str, Handler] = {"sort": _sort_exec, "rg": _rg_exec}
