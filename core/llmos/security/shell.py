"""A fail-closed policy for shell commands, built on the real Bash grammar.

``analyze_command`` refuses control and format characters, NUL, backslash-newline
and oversized input before parsing; parses with tree-sitter-bash; denies anything
that does not parse cleanly; and walks the syntax tree with an allowlist: every
node type, program, flag and path must be known to be safe for the command to
be allowed. Everything else asks or denies, with the rule that decided.

Design choices worth knowing:

* The verb must be a plain unquoted word. A quoted or escaped verb (``'rm'``,
  ``r""m``, ``\\rm``, ``$'\\x72m'``) is denied: nobody writes that except to slip
  past a filter. A verb from an expansion is denied.
* Values hidden in substitutions are *folded* where the analyzer can see them
  (``$(echo /)``, ``X=/; ... $X``), so hiding a literal never makes a command look
  safer; unknowable values are treated as the worst value they could take in
  their position (a write or delete target, a flag of a program that has
  executing flags). Substituting the output of a decoder is denied.
* Wrappers (env, timeout, xargs, nice, sudo, ...) are judged at least as
  strictly as the command they wrap; nested shells (``bash -c``), ``eval`` and
  friends re-parse their text one level deeper, up to ``MAX_DEPTH``.
* Globs are allowed only for read-only programs whose flags cannot execute
  anything, and only when every match is a workspace path whose name does not
  start with ``-`` (wildcard injection); see ``shell.glob``.
* Paths are resolved beneath the workspace with ``paths.resolve_beneath``
  (symlinks included); relative paths are checked from every directory a ``cd``
  earlier in the command may have entered.
* Commands that run workspace code (``python3 x.py``, ``pytest``, ``npm test``)
  are allowed only when ``sandboxed`` is true.

The verdict describes the command as Bash runs it (``bash -c``, cwd = workspace);
other shells (dash's ``&>``, zsh's globbing) parse some constructs differently.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from llmos.security import shellrules as R
from llmos.security.programs import EXEC_CHECKS, handler
from llmos.security.programs.common import unknown as unknown_program
from llmos.security.programs.common import workspace_code
from llmos.security.programs.environment import check_assignment
from llmos.security.protected import ProtectedPaths
from llmos.security.secrets import is_secret_name, is_secret_path
from llmos.security.shellargs import Invocation, Role, Stdin
from llmos.security.shellpaths import AnalysisState, PathChecker
from llmos.security.shellwords import Word, WordBuilder
from llmos.security.verdict import Verdict, combine

MAX_BYTES = 8 * 1024
MAX_DEPTH = 3
MAX_COMMANDS = 300

LANGUAGE = Language(tree_sitter_bash.language())
_VERB = re.compile(r"^[A-Za-z0-9_:.\[][A-Za-z0-9_.+:\[\]@-]*$")
_SYSTEM_DIRS = ("/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/", "/usr/local/bin/",
                "/usr/local/sbin/")
_REDIRECT_OPS = (">", ">>", "<", "&>", "&>>", ">&", "<&", ">|", "<>", ">&-", "<&-")
_STATEMENTS = frozenset({
    "command", "pipeline", "list", "redirected_statement", "subshell", "compound_statement",
    "if_statement", "while_statement", "for_statement", "c_style_for_statement",
    "case_statement", "function_definition", "variable_assignment", "variable_assignments",
    "declaration_command", "unset_command", "negated_command", "test_command", "comment",
})
_BLOCKS = frozenset({"do_group", "else_clause", "elif_clause", "case_item"})
_WORDISH = frozenset({"word", "string", "raw_string", "ansi_c_string", "concatenation", "number",
                      "simple_expansion", "expansion", "command_substitution",
                      "process_substitution", "arithmetic_expansion"})
_DECODERS = {"base64": ("-d", "--decode", "-D"), "base32": ("-d", "--decode"),
             "basenc": ("-d", "--decode"), "xxd": ("-r", "-revert"), "rev": (),
             "uudecode": (), "zcat": (), "gunzip": (), "bunzip2": (), "unxz": (),
             "unzstd": (), "tr": (), "openssl": ("-d", "base64", "enc"), "od": (),
             "gzip": ("-d",), "xz": ("-d",), "bzip2": ("-d",), "zstd": ("-d",)}


def precheck(command: object) -> Verdict | None:
    """Refusals that need no parsing: type, size, NUL, invisible characters, line joins."""
    if not isinstance(command, str):
        return R.EMPTY.verdict(f"command must be a string, got {type(command).__name__}")
    if not command.strip():
        return R.EMPTY.verdict("the command is empty")
    if len(command.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return R.TOO_LONG.verdict(f"the command is longer than {MAX_BYTES} bytes")
    if "\x00" in command:
        return R.NUL.verdict("the command contains a NUL byte")
    if "\\\n" in command:
        return R.LINE_CONTINUATION.verdict("backslash-newline joins lines; write one line")
    for ch in command:
        cat = unicodedata.category(ch)
        if (cat == "Cc" and ch not in "\t\n") or cat in ("Cf", "Co", "Cs", "Cn"):
            return R.CONTROL_CHAR.verdict(f"the command contains the invisible or control "
                                          f"character U+{ord(ch):04X}")
        if cat in ("Zl", "Zp") or (cat == "Zs" and ch != " "):
            return R.UNICODE_SPACE.verdict(f"the command contains U+{ord(ch):04X}, which looks "
                                           "like a space but is not a word separator")
    return None


def _text(node: Node | None) -> str:
    if node is None:
        return ""
    return (node.text or b"").decode("utf-8", "surrogateescape")


def _has_missing(node: Node) -> bool:
    if node.is_missing or node.is_error:
        return True
    return any(_has_missing(child) for child in node.children)


class _Analyzer:
    """Walks one command (and the shell text nested in it), collecting findings."""

    def __init__(self, state: AnalysisState, depth: int = 0) -> None:
        self.state = state
        self.workspace = state.workspace
        self.sandboxed = state.sandboxed
        self.depth = depth
        self.paths = PathChecker(state)
        self.variables: dict[str, str | None] = {}
        self._compound = 0
        self._argv_cache: dict[int, list[Word]] = {}
        self.builder = WordBuilder(self.add, self._fold_substitution, self._lookup)

    # ------------------------------------------------------------------ context
    def add(self, verdict: Verdict) -> None:
        """Record a finding (see ``AnalysisState.add``)."""
        self.state.add(verdict)

    def check_path(self, word: Word, role: Role, *, glob_ok: bool = False) -> None:
        """Check a path argument for ``role``; see ``shellargs.Context``."""
        self.paths.check(word, role, glob_ok=glob_ok)

    def enter_directory(self, word: Word) -> None:
        """``cd word``: later relative paths are also checked from there."""
        self.paths.enter_directory(word)

    # ------------------------------------------------------------------ entry
    def run(self, source: str, stdin: Stdin = "inherit") -> None:
        """Check, parse and walk ``source``."""
        refused = precheck(source)
        if refused is not None:
            self.add(refused)
            return
        tree = Parser(LANGUAGE).parse(source.encode("utf-8", "surrogateescape"))
        root = tree.root_node
        if root.has_error or _has_missing(root):
            self.add(R.PARSE_ERROR.verdict("the command does not parse as Bash"))
            return
        self._block(root, stdin, 0)

    def analyze_source(self, source: str, *, label: str, stdin: Stdin = "inherit") -> None:
        """Analyze shell text nested in the command (bash -c, eval), one level deeper."""
        if self.depth + 1 > MAX_DEPTH:
            self.add(R.TOO_COMPLEX.verdict(f"{label} nests shells deeper than {MAX_DEPTH} levels"))
            return
        _Analyzer(self.state, self.depth + 1).run(source, stdin)

    # ------------------------------------------------------------------ statements
    def _block(self, node: Node, stdin: Stdin, stage: int) -> set[str]:
        """Walk the statements among ``node``'s children."""
        programs: set[str] = set()
        for child in node.children:
            if child.type == "&":
                self.add(R.BACKGROUND.verdict("& runs a command in the background"))
            elif child.is_named:
                programs |= self._statement(child, stdin, stage)
        return programs

    def _statement(self, node: Node, stdin: Stdin, stage: int,
                   extra: list[Word] | None = None) -> set[str]:
        kind = node.type
        if kind == "comment":
            return set()
        if kind == "command":
            return self._command(node, stdin, stage, extra or [])
        if extra:
            self.add(R.UNKNOWN_SYNTAX.verdict("words after a redirect target of a compound "
                                              "command"))
        if kind == "redirected_statement":
            return self._redirected(node, stdin, stage)
        if kind == "pipeline":
            return self._pipeline(node, stdin, stage)
        if kind == "list":
            return self._nested(node, stdin, stage)
        if kind in ("variable_assignment", "variable_assignments"):
            self._assignment_statement(node)
            return set()
        if kind in ("declaration_command", "unset_command"):
            self._declaration(node)
            return set()
        if kind == "negated_command":
            return self._block(node, stdin, stage)
        if kind in ("subshell", "compound_statement"):
            if kind == "compound_statement" and node.children and node.children[0].type == "((":
                self.add(R.CONTROL_FLOW.verdict("arithmetic command (( ))"))
                self._expressions(node)
                return set()
            self.add(R.GROUPING.verdict(f"{'subshell ( )' if kind == 'subshell' else 'group { }'}"
                                        " runs several commands as one"))
            return self._nested(node, stdin, stage)
        if kind == "function_definition":
            return self._function(node)
        if kind in ("if_statement", "while_statement", "for_statement", "c_style_for_statement",
                    "case_statement", "test_command"):
            return self._control(node, stdin, stage)
        self.add(R.UNKNOWN_SYNTAX.verdict(f"{kind} is not modelled"))
        return set()

    def _nested(self, node: Node, stdin: Stdin, stage: int) -> set[str]:
        self._compound += 1
        try:
            return self._block(node, stdin, stage)
        finally:
            self._compound -= 1

    def _pipeline(self, node: Node, stdin: Stdin, stage: int) -> set[str]:
        programs: set[str] = set()
        index = stage
        for child in node.children:
            if child.type in ("|", "|&"):
                index += 1
            elif child.is_named:
                programs |= self._statement(child, stdin if index == 0 else "pipe", index)
        return programs

    def _control(self, node: Node, stdin: Stdin, stage: int) -> set[str]:
        self.add(R.CONTROL_FLOW.verdict(f"{node.type.replace('_', ' ')} is not allowlisted"))
        self._compound += 1
        try:
            return self._control_children(node, stdin, stage)
        finally:
            self._compound -= 1

    def _control_children(self, node: Node, stdin: Stdin, stage: int) -> set[str]:
        programs: set[str] = set()
        if node.type in ("test_command", "c_style_for_statement"):
            self._expressions(node)
            if node.type == "test_command":
                return programs
        for index, child in enumerate(node.children):
            field = node.field_name_for_child(index)
            if child.type == "&":
                self.add(R.BACKGROUND.verdict("& runs a command in the background"))
            if not child.is_named:
                continue
            if child.type == "variable_name":
                self.variables[_text(child)] = None
            elif field == "value" or child.type in _WORDISH:
                self.builder.words(child)
            elif child.type in _BLOCKS:
                programs |= self._control_children(child, stdin, stage)
            elif child.type in _STATEMENTS:
                programs |= self._statement(child, stdin, stage)
            elif node.type == "c_style_for_statement":
                continue
            else:
                self.add(R.UNKNOWN_SYNTAX.verdict(f"{child.type} inside {node.type}"))
        return programs

    def _expressions(self, node: Node) -> None:
        """Evaluate the words inside test and arithmetic expressions, analyzing substitutions."""
        raw = _text(node)
        if re.search(r"\[[^\]]*(\$\(|`)", raw) or re.search(r"['\"][^'\"]*(\$\(|`)", raw):
            self.add(R.COMPLEX_EXPANSION.verdict("text that arithmetic evaluation would run as "
                                                 "a command substitution"))
        for child in node.children:
            if child.type in _WORDISH:
                self.builder.words(child)
            elif child.child_count:
                self._expressions(child)

    def _function(self, node: Node) -> set[str]:
        name = _text(node.child_by_field_name("name"))
        body = node.child_by_field_name("body")
        if body is not None and name and self._calls(body, name):
            self.add(R.FORK_BOMB.verdict(f"function {name} calls itself"))
        else:
            self.add(R.FUNCTION.verdict(f"defines function {name}"))
        if body is None:
            return set()
        self._compound += 1
        try:
            return self._statement(body, "inherit", 0)
        finally:
            self._compound -= 1

    def _calls(self, node: Node, name: str) -> bool:
        if node.type == "command_name" and _text(node) == name:
            return True
        return any(self._calls(child, name) for child in node.children)

    # ------------------------------------------------------------------ assignments
    def _assignment_statement(self, node: Node) -> None:
        nodes = [node] if node.type == "variable_assignment" else [
            c for c in node.children if c.type == "variable_assignment"]
        for assignment in nodes:
            name, value = self._assignment(assignment, "assignment")
            if name is not None:
                static = value.text if value is not None and not self._compound else None
                self.variables[name] = static

    def _assignment(self, node: Node, how: str) -> tuple[str | None, Word | None]:
        name_node = node.child_by_field_name("name")
        value_node = node.child_by_field_name("value")
        name = _text(name_node)
        if name_node is None or name_node.type != "variable_name":
            self.add(R.COMPLEX_EXPANSION.verdict(f"{how} to {name or '?'}: subscripted or "
                                                 "computed names are evaluated"))
            return None, None
        value: Word | None = None
        if value_node is not None:
            if value_node.type == "array":
                for child in value_node.children:
                    if child.is_named:
                        self._scan(self.builder.word(child))
            else:
                value = self.builder.word(value_node)
                self._scan(value)
        check_assignment(self, name, value, how)
        return name, value

    def _declaration(self, node: Node) -> None:
        keyword = node.children[0].type if node.children else "declare"
        names = 0
        flags: list[str] = []
        for child in node.children[1:]:
            if child.type == "variable_assignment":
                names += 1
                name, _ = self._assignment(child, keyword)
                if name is not None:
                    self.variables[name] = None
            elif child.type == "variable_name":
                names += 1
                text = _text(child)
                self.variables[text] = None
                check_assignment(self, text, None, keyword)
            elif child.type in _WORDISH:
                word = self.builder.word(child)
                if word.text is not None and word.text.startswith(("-", "+")):
                    flags.append(word.text)
                elif word.text is not None and "[" in word.text and "$" in word.text:
                    self.add(R.COMPLEX_EXPANSION.verdict(f"{keyword} {word.text[:30]}: "
                                                         "subscripts are evaluated"))
                else:
                    names += 1
                    self.add(R.ASSIGNMENT.verdict(f"{keyword} {word.raw}"))
            elif child.is_named:
                self.add(R.UNKNOWN_SYNTAX.verdict(f"{child.type} in {keyword}"))
        if keyword == "unset":
            self.add(R.ASSIGNMENT.verdict("unset removes variables or functions"))
        elif not names:
            self.add(R.ENV_DUMP.verdict(f"{keyword} {' '.join(flags)} prints variables"))
        else:
            self.add(R.ASSIGNMENT.verdict(f"{keyword} sets shell variables"))

    def _lookup(self, name: str) -> str | None:
        if is_secret_name(name):
            self.add(R.SECRET_ACCESS.verdict(f"${name} looks like a secret"))
        if name in self.variables:
            return self.variables[name]
        if name == "HOME":
            return "~"
        return None

    # ------------------------------------------------------------------ substitutions
    def _fold_substitution(self, node: Node) -> str | None:
        """Analyze the commands inside $(...), `...`, <(...); return their output if obvious."""
        if self.state.commands > MAX_COMMANDS:
            self.add(R.TOO_COMPLEX.verdict(f"more than {MAX_COMMANDS} commands to analyze"))
            return None
        inner = [c for c in node.children if c.is_named]
        self._compound += 1
        try:
            for child in inner:
                self._statement(child, "inherit", 0)
        finally:
            self._compound -= 1
        if self._decodes(node):
            self.add(R.DECODE_EXEC.verdict(f"substitution {_text(node)[:50]} decodes hidden text"))
            return None
        if node.type != "command_substitution" or len(inner) != 1 or inner[0].type != "command":
            return None
        return self._echo_value(inner[0])

    def _decodes(self, node: Node) -> bool:
        for command in _descendants(node, "command"):
            verb = _text(command.child_by_field_name("name"))
            args = [_text(c) for i, c in enumerate(command.children)
                    if command.field_name_for_child(i) == "argument"]
            if verb in _DECODERS:
                needles = _DECODERS[verb]
                if not needles or any(a.strip("'\"") in needles for a in args):
                    return True
            if verb in ("printf", "echo") and any("\\x" in a or "\\0" in a or "\\u" in a
                                                  for a in args):
                return True
        return False

    def _echo_value(self, command: Node) -> str | None:
        """The output of a static ``echo``/``printf`` command already walked, if obvious."""
        argv = self._argv_cache.get(command.id)
        if argv is None or argv[0].text not in ("echo", "printf") or not argv[0].plain:
            return None
        if any(word.text is None for word in argv[1:]):
            return None
        args = [word.text or "" for word in argv[1:]]
        if argv[0].text == "echo":
            while args and args[0] in ("-n", "-E"):
                args.pop(0)
            return " ".join(args)
        if len(args) == 1 and "%" not in args[0] and "\\" not in args[0]:
            return args[0]
        if len(args) >= 2 and args[0] in ("%s", "%s\\n", "%s\n"):
            return " ".join(args[1:])
        return None

    # ------------------------------------------------------------------ redirects
    def _redirected(self, node: Node, stdin: Stdin, stage: int) -> set[str]:
        body = node.child_by_field_name("body")
        redirects = [child for index, child in enumerate(node.children)
                     if node.field_name_for_child(index) == "redirect"]
        stdin = _peek_stdin(redirects) or stdin
        extra: list[Word] = []
        trailing: list[tuple[Node, int]] = []

        def check_redirects() -> None:
            for child in redirects:
                _, words, after = self._redirect(child, stage)
                extra.extend(words)
                trailing.extend(after)

        if body is None or body.type == "command":
            check_redirects()  # stray words after the target are arguments of the command
            programs = self._statement(body, stdin, stage, extra) if body is not None else set()
        else:
            # tree-sitter hangs a trailing redirect on the whole list or pipeline; Bash applies
            # it to the last command, after any cd before it, so check it after the body.
            programs = self._statement(body, stdin, stage)
            check_redirects()
            if extra:
                self.add(R.UNKNOWN_SYNTAX.verdict("words after the redirect target of a list"))
        for follower, follower_stage in trailing:
            if follower_stage < 0:
                programs |= self._statement(follower, "inherit", 0)
            else:
                programs |= self._statement(follower, "pipe", follower_stage)
        return programs

    def _redirect(self, node: Node, stage: int) -> tuple[Stdin | None, list[Word],
                                                         list[tuple[Node, int]]]:
        """Check one redirect; return the stdin it sets, stray words, and trailing statements."""
        if node.type == "file_redirect":
            stdin, extra = self._file_redirect(node)
            return stdin, extra, []
        if node.type == "herestring_redirect":
            for child in node.children:
                if child.is_named:
                    self._scan(self.builder.word(child))
            return "herestring", [], []
        if node.type == "heredoc_redirect":
            return self._heredoc(node, stage)
        self.add(R.UNKNOWN_SYNTAX.verdict(f"redirect {node.type}"))
        return None, [], []

    def _file_redirect(self, node: Node) -> tuple[Stdin | None, list[Word]]:
        op = next((c.type for c in node.children if c.type in _REDIRECT_OPS), None)
        descriptor = next((_text(c) for c in node.children if c.type == "file_descriptor"), None)
        dests = [c for i, c in enumerate(node.children)
                 if node.field_name_for_child(i) == "destination"]
        if op is None:
            self.add(R.UNKNOWN_SYNTAX.verdict(f"redirect {_text(node)}"))
            return None, []
        if op in (">&-", "<&-"):
            return None, []
        if op in (">&", "<&") and dests and (dests[0].type == "number" or _text(dests[0]) == "-"):
            return None, [w for d in dests[1:] for w in self.builder.words(d)]
        if not dests:
            self.add(R.UNKNOWN_SYNTAX.verdict(f"redirect {_text(node)} without a target"))
            return None, []
        target = self.builder.word(dests[0])
        extra = [w for d in dests[1:] for w in self.builder.words(d)]
        self._scan(target)
        if op == "<":
            self.check_path(target, "read")
            return ("file" if descriptor in (None, "0") else None), extra
        if target.text is None:
            self.add(R.DYNAMIC_VALUE.verdict(f"redirect target {target.raw} is computed at run "
                                             "time"))
            return None, extra
        self.check_path(target, "write")
        return None, extra

    def _heredoc(self, node: Node, stage: int) -> tuple[Stdin | None, list[Word],
                                                        list[tuple[Node, int]]]:
        start = next((_text(c) for c in node.children if c.type == "heredoc_start"), "")
        quoted = any(ch in start for ch in "'\"\\")
        extra: list[Word] = []
        trailing: list[tuple[Node, int]] = []
        next_stage = stage + 1
        for index, child in enumerate(node.children):
            kind = child.type
            field = node.field_name_for_child(index)
            if kind in ("<<", "<<-", "heredoc_start", "heredoc_end", "&&", "||", ";", "|",
                        "|&"):
                continue
            if kind == "heredoc_body":
                if not quoted:
                    self._heredoc_body(child)
            elif kind == "file_redirect":
                _, words = self._file_redirect(child)
                extra.extend(words)
            elif kind == "pipeline" and field != "right":
                for stage_node in child.children:
                    if stage_node.is_named:
                        trailing.append((stage_node, next_stage))
                        next_stage += 1
            elif field == "right" or kind in _STATEMENTS:
                trailing.append((child, -1))
            else:
                self.add(R.UNKNOWN_SYNTAX.verdict(f"{kind} inside a heredoc redirect"))
        return "heredoc", extra, trailing

    def _heredoc_body(self, body: Node) -> None:
        raw = _text(body)
        if "`" in raw:
            self.add(R.UNKNOWN_SYNTAX.verdict("backticks in an unquoted heredoc are command "
                                              "substitutions the parser does not expose"))
        found = False
        for child in body.children:
            if child.type in ("simple_expansion", "expansion", "command_substitution",
                              "arithmetic_expansion"):
                found = True
                self.builder.word(child)
        if "$" in raw and not found:
            self.add(R.VARIABLE_EXPANSION.verdict("an unquoted heredoc expands $ in its body"))

    # ------------------------------------------------------------------ commands
    def _command(self, node: Node, stdin: Stdin, stage: int, extra: list[Word]) -> set[str]:
        if self.state.commands > MAX_COMMANDS:
            self.add(R.TOO_COMPLEX.verdict(f"more than {MAX_COMMANDS} commands to analyze"))
            return set()
        verb: Word | None = None
        args: list[Word] = []
        for index, child in enumerate(node.children):
            field = node.field_name_for_child(index)
            if child.type == "variable_assignment":
                self._assignment(child, "prefix")
            elif field == "name":
                named = [c for c in child.children if c.is_named]
                if len(named) != 1:
                    self.add(R.UNKNOWN_SYNTAX.verdict(f"command name {_text(child)}"))
                    return set()
                verb = self.builder.word(named[0])
            elif field == "argument":
                args.extend(self.builder.words(child))
            elif child.type in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
                new_stdin, words, after = self._redirect(child, stage)
                stdin = new_stdin or stdin
                args.extend(words)
                for follower, follower_stage in after:
                    self._statement(follower, "pipe" if follower_stage >= 0 else "inherit",
                                    max(follower_stage, 0))
            elif child.is_named:
                self.add(R.UNKNOWN_SYNTAX.verdict(f"{child.type} in a command"))
        if verb is None:
            return set()
        argv = [verb, *args, *extra]
        self._argv_cache[node.id] = argv
        return self.analyze_argv(argv, Invocation(name=verb.text or "?", args=argv[1:],
                                                  stdin=stdin, stage=stage))

    def analyze_argv(self, argv: list[Word], inv: Invocation, *,
                     escalate_only: bool = False) -> set[str]:
        """Judge one simple command given as words (see ``shellargs.Context``)."""
        self.state.commands += 1
        if self.state.commands > MAX_COMMANDS:
            self.add(R.TOO_COMPLEX.verdict(f"more than {MAX_COMMANDS} commands to analyze"))
            return set()
        if escalate_only:
            self.state.escalate += 1
        try:
            return self._analyze_argv(argv, inv)
        finally:
            if escalate_only:
                self.state.escalate -= 1

    def _analyze_argv(self, argv: list[Word], inv: Invocation) -> set[str]:
        for word in argv:
            self._scan(word)
            if word.brace:
                self.add(R.BRACE_EXPANSION.verdict(f"brace expansion in {word.raw}"))
            if word.tilde and word is not argv[0]:
                self.add(R.TILDE.verdict(f"{word.raw} expands ~ to a home directory"))
        verb = argv[0]
        if verb.text is None or verb.glob or verb.brace or verb.folded:
            self.add(R.DYNAMIC_VERB.verdict(f"the program name {verb.raw} is computed at run "
                                            "time"))
            return set()
        name = verb.text
        if verb.quoted or verb.ansi_c or verb.tilde or not name.isascii():
            self.add(R.OBFUSCATED_VERB.verdict(f"the program name {verb.raw} is quoted, escaped "
                                               "or not plain ASCII"))
        if "/" in name:
            return self._path_qualified(verb, argv, inv)
        inv.name = name
        inv.args = argv[1:]
        if not _VERB.match(name):
            self.add(R.UNKNOWN_PROGRAM.verdict(f"{name!r} is not a program name the policy "
                                               "knows"))
            unknown_program(self, inv)
            return inv.programs
        handler(name)(self, inv)
        extra_check = EXEC_CHECKS.get(name)
        if extra_check is not None:
            extra_check(self, inv)
        for word in argv[1:]:
            if word.glob and not self.paths.was_checked(word):
                self.add(R.GLOB.verdict(f"{word.raw} is a glob passed to {name}, which is not "
                                        "glob-safe (wildcard injection)"))
        inv.programs.add(name)
        return inv.programs

    def _path_qualified(self, verb: Word, argv: list[Word], inv: Invocation) -> set[str]:
        name = verb.text or ""
        base = name.rstrip("/").rsplit("/", 1)[-1]
        if name.startswith(_SYSTEM_DIRS) and name.count("/") == 2 + name.startswith("/usr/") + (
                name.startswith("/usr/local/")):
            self.add(R.PATH_QUALIFIED.verdict(f"{name} is called by path; judged as {base}"))
            return self._analyze_argv([Word(text=base, raw=verb.raw), *argv[1:]], inv)
        self.check_path(verb, "read")
        workspace_code(self, inv, f"program {name}")
        if base and _VERB.match(base):
            self.analyze_argv([Word(text=base, raw=verb.raw), *argv[1:]],
                              Invocation(name=base, args=argv[1:], stdin=inv.stdin,
                                         stage=inv.stage), escalate_only=True)
        return inv.programs

    def _scan(self, word: Word) -> None:
        """Deny secret locations and network devices in any word, whatever its role."""
        texts = {t for t in (word.text, word.raw) if t}
        for text in list(texts):
            texts.update(part for part in re.split(r"[=,:]", text) if part)
        for text in texts:
            candidate = text.lstrip("@").strip("'\"")
            if is_secret_path(candidate) or is_secret_path(candidate.replace("$HOME", "~")):
                self.add(R.SECRET_ACCESS.verdict(f"{word.raw} names a credential or process "
                                                 "secret"))
                break
            if re.search(r"/dev/(tcp|udp)/", candidate):
                self.add(R.NETWORK_DEVICE.verdict(f"{word.raw} opens a network socket"))
                break
        for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", word.raw):
            if is_secret_name(name):
                self.add(R.SECRET_ACCESS.verdict(f"${name} looks like a secret"))


def _peek_stdin(redirects: list[Node]) -> Stdin | None:
    """The stdin a list of redirects gives a command, without checking anything."""
    stdin: Stdin | None = None
    for node in redirects:
        if node.type == "heredoc_redirect":
            stdin = "heredoc"
        elif node.type == "herestring_redirect":
            stdin = "herestring"
        elif node.type == "file_redirect":
            ops = [c.type for c in node.children if c.type in _REDIRECT_OPS]
            descriptor = next((_text(c) for c in node.children if c.type == "file_descriptor"),
                              None)
            if ops == ["<"] and descriptor in (None, "0"):
                stdin = "file"
    return stdin


def _descendants(node: Node, kind: str) -> list[Node]:
    found = [node] if node.type == kind else []
    for child in node.children:
        found.extend(_descendants(child, kind))
    return found


def explain_command(command: str, *, workspace: Path, sandboxed: bool, cwd: str = "",
                    protected: ProtectedPaths | None = None) -> list[Verdict]:
    """Every finding the policy has about ``command``, strictest reasons included.

    ``cwd`` is the workspace-relative directory the command starts in (a shell that
    keeps its directory between calls); relative paths resolve from it.
    """
    state = AnalysisState(Path(workspace), sandboxed, protected)
    start = _start_directory(Path(workspace), cwd)
    state.cwds = [start]
    if start is None:
        state.add(R.READ_OUTSIDE.verdict(
            f"the shell's working directory {cwd!r} is not a directory inside the workspace"))
    try:
        _Analyzer(state).run(command)
    except RecursionError:
        state.escalate = 0
        state.add(R.TOO_COMPLEX.verdict("the command nests too deeply to analyze"))
    except Exception as exc:  # fail closed on analyzer bugs
        state.escalate = 0
        state.add(R.UNKNOWN_SYNTAX.verdict(f"the analyzer failed ({type(exc).__name__}: {exc}); "
                                           "refusing"))
    return state.findings


def _start_directory(workspace: Path, cwd: str) -> str | None:
    """``cwd`` as a workspace-relative directory, or None when it is not one."""
    if cwd in ("", "."):
        return ""
    from llmos.security.paths import PathDenied, resolve_beneath

    try:
        real = resolve_beneath(workspace, cwd)
    except PathDenied:
        return None
    if not real.is_dir():
        return None
    rel = str(real.relative_to(Path(os.path.realpath(workspace))))
    return "" if rel == "." else rel


def analyze_command(command: str, *, sandboxed: bool, workspace: Path, cwd: str = "",
                    protected: ProtectedPaths | None = None) -> Verdict:
    """Allow, ask or deny a Bash command that would run in ``cwd`` (workspace-relative;
    default the workspace root).

    ``sandboxed`` says whether the command will run inside the OS sandbox; only
    then are commands that execute workspace code allowed. ``protected`` is llmos's
    own state in this workspace (``llmos.security.protected``).
    """
    return combine(
        explain_command(command, workspace=workspace, sandboxed=sandboxed, cwd=cwd,
                        protected=protected),
        default=R.EMPTY.verdict("the command contains nothing to run"),
    )
