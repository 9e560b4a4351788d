"""Line numbers for TOML keys and tables, which stdlib ``tomllib`` does not give.

``tomllib`` reports positions for syntax errors only. Semantic errors (an unknown field, a bad
threshold) must still say ``FILE:LINE``, so this module scans the raw text once and records the
line of every table header, array-of-tables element and ``key =``.

Paths mirror the parsed document: ``("rule", 2, "above")`` is the ``above`` key of the third
``[[rule]]``; ``("sources", "nyfed", "base_url")`` a key of ``[sources.nyfed]``; keys inside
inline tables and array elements get their own paths too (``("routes", 0, "match", "severity")``).

The scanner is only run on text that ``tomllib`` already accepted, so it can be lenient: it never
raises, and on anything it does not understand it keeps what it has found so far.
"""
from __future__ import annotations

import bisect
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

Path = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = re.compile(r"[,\]}\n#]")


@dataclass(frozen=True)
class Positions:
    """The line (1-based) of each path found in one TOML text."""
    lines: Mapping[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """The line of ``path``, else of its nearest enclosing table or key, else 1."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 1


def positions(text: str) -> Positions:
    """Scan ``text`` (already valid TOML) and map every table and key path to its line."""
    scanner = _Scanner(text)
    try:
        scanner.document()
    except (_GiveUp, IndexError, RecursionError):
        pass  # keep the positions found so far; line_of falls back to enclosing tables
    return Positions(MappingProxyType(dict(scanner.found)))


class _GiveUp(Exception):
    pass


class _Scanner:
    """A recursive-descent walk over TOML text that records where things are, nothing more."""

    def __init__(self, text: str):
        self.text = text
        self.i = 0
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.found: dict[Path, int] = {}
        self.arrays: dict[Path, int] = {}  # array-of-tables path -> index of its last element

    # ---- helpers ----
    def line(self, index: int | None = None) -> int:
        return bisect.bisect_left(self.newlines, self.i if index is None else index) + 1

    def record(self, path: Path, line: int) -> None:
        # The first mention wins, so an implicit parent table points at its first child.
        self.found.setdefault(path, line)

    def peek(self, s: str) -> bool:
        return self.text.startswith(s, self.i)

    def skip_blank(self, newlines: bool) -> None:
        """Skip spaces, tabs, comments and (when asked) newlines."""
        text = self.text
        while self.i < len(text):
            ch = text[self.i]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self.i += 1
            elif ch == "#":
                end = text.find("\n", self.i)
                self.i = len(text) if end < 0 else end
            else:
                return

    # ---- document structure ----
    def document(self) -> None:
        table: Path = ()
        while True:
            self.skip_blank(newlines=True)
            if self.i >= len(self.text):
                return
            if self.peek("[["):
                table = self.header(array=True)
            elif self.peek("["):
                table = self.header(array=False)
            else:
                self.key_value(table)

    def header(self, array: bool) -> Path:
        line = self.line()
        self.i += 2 if array else 1
        parts = self.key()
        self.skip_blank(newlines=False)
        self.i += 2 if array else 1
        path = self.resolve(parts)
        for depth in range(1, len(path)):
            self.record(path[:depth], line)
        if array:
            index = self.arrays.get(path, -1) + 1
            self.arrays[path] = index
            self.record(path, line)
            path = path + (index,)
        self.found[path] = line
        return path

    def resolve(self, parts: list[str]) -> Path:
        """Turn header names into a document path: ``[[a.b]]`` under ``[[a]]`` is inside the
        current element of ``a``, which is where TOML puts it."""
        path: Path = ()
        for n, part in enumerate(parts):
            path = path + (part,)
            if path in self.arrays and n < len(parts) - 1:
                path = path + (self.arrays[path],)
        return path

    def key_value(self, table: Path) -> None:
        line = self.line()
        parts = self.key()
        path = table + tuple(parts)
        for depth in range(len(table) + 1, len(path)):
            self.record(path[:depth], line)
        self.found[path] = line
        self.skip_blank(newlines=False)
        if not self.peek("="):
            raise _GiveUp
        self.i += 1
        self.skip_blank(newlines=False)
        self.value(path)

    def key(self) -> list[str]:
        """A dotted key: bare, "basic" or 'literal' parts separated by dots."""
        parts = []
        while True:
            self.skip_blank(newlines=False)
            if self.peek('"'):
                parts.append(self.basic_string())
            elif self.peek("'"):
                parts.append(self.literal_string())
            else:
                match = _BARE_KEY.match(self.text, self.i)
                if not match:
                    raise _GiveUp
                parts.append(match.group())
                self.i = match.end()
            self.skip_blank(newlines=False)
            if not self.peek("."):
                return parts
            self.i += 1

    # ---- values ----
    def value(self, path: Path) -> None:
        if self.peek('"""'):
            self.multiline('"""', escapes=True)
        elif self.peek("'''"):
            self.multiline("'''", escapes=False)
        elif self.peek('"'):
            self.basic_string()
        elif self.peek("'"):
            self.literal_string()
        elif self.peek("["):
            self.array(path)
        elif self.peek("{"):
            self.inline_table(path)
        else:
            match = _SCALAR_END.search(self.text, self.i)
            self.i = len(self.text) if match is None else match.start()

    def array(self, path: Path) -> None:
        # Arrays may span lines and hold comments; each element gets a path for error messages.
        self.i += 1
        index = 0
        while True:
            self.skip_blank(newlines=True)
            if self.peek("]"):
                self.i += 1
                return
            self.record(path + (index,), self.line())
            self.value(path + (index,))
            index += 1
            self.skip_blank(newlines=True)
            if self.peek(","):
                self.i += 1
            elif not self.peek("]"):
                raise _GiveUp

    def inline_table(self, path: Path) -> None:
        # TOML 1.0 keeps inline tables on one line; newlines are tolerated here anyway so the
        # scanner also copes with TOML 1.1 text.
        self.i += 1
        while True:
            self.skip_blank(newlines=True)
            if self.peek("}"):
                self.i += 1
                return
            self.key_value(path)
            self.skip_blank(newlines=True)
            if self.peek(","):
                self.i += 1
            elif not self.peek("}"):
                raise _GiveUp

    def basic_string(self) -> str:
        start = self.i + 1
        i = start
        while self.text[i] != '"':
            i += 2 if self.text[i] == "\\" else 1
        self.i = i + 1
        raw = self.text[start:i]
        try:
            # TOML's escapes are JSON's plus \U and \e; those rare ones only cost a lookup.
            return json.loads(f'"{raw}"')
        except ValueError:
            return raw

    def literal_string(self) -> str:
        end = self.text.index("'", self.i + 1)
        name = self.text[self.i + 1:end]
        self.i = end + 1
        return name

    def multiline(self, quote: str, escapes: bool) -> None:
        i = self.i + 3
        text = self.text
        while not text.startswith(quote, i):
            if i >= len(text):
                raise _GiveUp
            i += 2 if escapes and text[i] == "\\" else 1
        i += 3
        # Up to two quotes right before the closing delimiter belong to the content:
        # '''a''''' is "a''", so the delimiter is the last three quotes of the run.
        extra = 0
        while extra < 2 and text.startswith(quote[0], i):
            i += 1
            extra += 1
        self.i = i


def dotted(path: Path) -> str:
    """A path as a person writes it: ``sources.nyfed.base_url``, ``routes[0].receivers``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def syntax_problem(file: str, text: str, exc: tomllib.TOMLDecodeError) -> str:
    """``FILE:LINE: TOML syntax error: …`` from tomllib's message, which carries the line."""
    message = str(exc)
    line = getattr(exc, "lineno", None)  # Python 3.14+ has it as an attribute
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if match:
        line = line or int(match.group(1))
        message = f"{message[:match.start()]} (column {match.group(2)})"
    elif message.endswith("(at end of document)"):
        line = line or text.count("\n") + 1
        message = message.removesuffix(" (at end of document)") + " (at end of file)"
    return f"{file}:{line or 1}: TOML syntax error: {message}"


def decode_problem(file: str, raw: bytes, exc: UnicodeDecodeError) -> str:
    """``FILE:1: not UTF-8 text: …`` naming the first bad byte and where it is."""
    return (f"{file}:1: not UTF-8 text: {exc.reason} "
            f"(byte 0x{raw[exc.start]:02x} at offset {exc.start})")


# ---- reading: the one path every TOML loader (config, rules, rule tests, episodes) takes ----

class TomlProblem(Exception):
    """A file that cannot be read as TOML, as one located ``FILE:LINE: ...`` line: a loader
    turns it into its own error (``ConfigError``, ``RuleError``) or problem list."""


def read_text(path: str | os.PathLike[str]) -> str:
    """The file's text: UTF-8, a leading byte-order mark dropped (editors on Windows write one)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise TomlProblem(f"{path}:1: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TomlProblem(decode_problem(str(path), raw, exc)) from None
    return text.removeprefix("\ufeff")


def loads(text: str, filename: str, *, parse_float: Callable[[str], Any] = float) -> dict[str, Any]:
    """``tomllib.loads`` with a syntax error located as ``FILE:LINE: ...``. Rules, rule tests and
    episodes read numbers as ``Decimal`` (``parse_float=Decimal``): never a float deciding."""
    try:
        return tomllib.loads(text, parse_float=parse_float)
    except tomllib.TOMLDecodeError as exc:
        raise TomlProblem(syntax_problem(filename, text, exc)) from None
