"""One validator for every TOML file the box reads (config, show files).

A schema is plain data: sections -> keys -> :class:`Field`. :func:`validate` parses the text,
checks every key against the schema and reports *every* problem at once, each with the file
name, the line it is on and a plain-words message ("did you mean 'audio.rate'?"). A bad value
falls back to its default, so the box keeps running while the problem is still reported:
an operator on site fixes a typo from the log, not from a stack trace.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 on older Jetson images
    import tomli as tomllib  # type: ignore[no-redef]

KINDS = ("str", "int", "float", "bool", "path", "list")


@dataclass(frozen=True)
class Field:
    """How one key is checked.

    ``kind`` is one of ``str``, ``int``, ``float``, ``bool``, ``path`` (a string, returned as a
    :class:`~pathlib.Path`; the empty string means "not set" and is returned as ``""``) or
    ``list`` (exactly ``length`` numbers of ``item`` kind ``int`` or ``float``).
    ``minimum``/``maximum`` bound numbers (each item, for lists). ``check`` may return a
    plain-words complaint about an otherwise well-typed value, or None.
    """

    kind: str
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    length: int | None = None
    item: str = "float"
    required: bool = False
    check: Callable[[Any], str | None] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind!r}")
        if self.kind == "list" and self.item not in ("int", "float"):
            raise ValueError(f"list items must be int or float, not {self.item!r}")


Schema = Mapping[str, Mapping[str, Field]]
"""Section name -> key name -> Field."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, worded for the person who edits it."""

    source: str
    line: int | None
    key: str
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


# --- line numbers -----------------------------------------------------------------------
# tomllib returns no positions, so find `[section]` and `key =` lines by scanning the text.

_HEADER = re.compile(r"^\s*\[\s*([^\[\]#]+?)\s*\]\s*(?:#.*)?$")
_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")


def _unquote(part: str) -> str:
    """A key part as TOML reads it: escapes in a "quoted" key decoded ("\\u00e9" is é)."""
    if part[:1] == "'":
        return part[1:-1]
    if part[:1] == '"':
        try:
            return next(iter(tomllib.loads(f"{part} = 0")))
        except (tomllib.TOMLDecodeError, StopIteration):
            return part[1:-1]
    return part


def _split_dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'""", text)
    return tuple(_unquote(p) for p in parts)


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each table header and key path in ``text`` to its (1-based) line number.

    Best effort: lines inside multi-line strings are skipped; the first occurrence wins.
    """
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        header = _HEADER.match(line)
        if header and not line.lstrip().startswith("[["):
            table = _split_dotted(header.group(1))
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault(table + _split_dotted(key.group(1)), number)
            rest = line[key.end():]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_string = quote
                    break
    return lines


# --- plain words -----------------------------------------------------------------------


def describe_value(value: Any) -> str:
    """Say what a TOML value is, the way a person would: "the text 'fast'"."""
    if isinstance(value, bool):
        return f"the true/false value {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}" if value else "an empty text"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__} value"


_EXPECTED = {
    "str": "a text in quotes",
    "path": "a file path in quotes",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
}


def _expected(field: Field) -> str:
    if field.kind == "list":
        noun = "whole numbers" if field.item == "int" else "numbers"
        return f"a list of {field.length} {noun}" if field.length else f"a list of {noun}"
    return _EXPECTED[field.kind]


def _closest(word: str, candidates: list[str]) -> str | None:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


def _did_you_mean(word: str, candidates: list[str]) -> str:
    close = _closest(word, candidates)
    return f" — did you mean {close!r}?" if close else ""


def _range_problem(field: Field, number: float) -> str | None:
    low, high = field.minimum, field.maximum
    if (low is not None and number < low) or (high is not None and number > high):
        if low is not None and high is not None:
            return f"must be between {low:g} and {high:g}, got {number:g}"
        if low is not None:
            return f"must be at least {low:g}, got {number:g}"
        return f"must be at most {high:g}, got {number:g}"
    return None


def _is_number(value: Any, item: str) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if item == "int" else isinstance(value, (int, float))


def check_value(field: Field, value: Any) -> tuple[Any, str | None]:
    """Return ``(converted value, None)`` or ``(default, complaint)``."""
    kind = field.kind
    if kind in ("str", "path"):
        ok = isinstance(value, str)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind in ("int", "float"):
        ok = _is_number(value, kind)
    else:
        ok = isinstance(value, list) and all(_is_number(v, field.item) for v in value)
    if not ok:
        return field.default, f"expected {_expected(field)}, got {describe_value(value)}"

    if kind == "float":
        value = float(value)
    if kind == "list":
        if field.length is not None and len(value) != field.length:
            plural = "s" if len(value) != 1 else ""
            return field.default, f"expected {_expected(field)}, got {len(value)} item{plural}"
        for item in value:
            complaint = _range_problem(field, item)
            if complaint:
                return field.default, complaint
        value = [float(v) for v in value] if field.item == "float" else list(value)
    if kind in ("int", "float"):
        complaint = _range_problem(field, value)
        if complaint:
            return field.default, complaint
    if field.choices is not None and value not in field.choices:
        options = ", ".join(repr(c) for c in field.choices)
        hint = ""
        if isinstance(value, str):
            hint = _did_you_mean(value, [str(c) for c in field.choices])
        return field.default, f"must be one of {options}, got {value!r}{hint}"
    if field.check is not None:
        complaint = field.check(value)
        if complaint:
            return field.default, complaint
    if kind == "path" and value:
        value = Path(value).expanduser()
    return value, None


# --- the validator ---------------------------------------------------------------------

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def defaults(schema: Schema) -> dict[str, dict[str, Any]]:
    """The values a file that sets nothing would give."""
    return {name: {key: f.default for key, f in keys.items()} for name, keys in schema.items()}


def validate(
    text: str, schema: Schema, source_name: str
) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Check ``text`` (TOML) against ``schema``.

    Returns every section and key of the schema with its value (the default where the file
    does not set it or sets it wrongly) and the list of problems, in file order.
    """
    values = defaults(schema)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        line = column = None
        where = _TOML_POSITION.search(message)
        if where:
            line, column = int(where.group(1)), int(where.group(2))
            message = message[: where.start()]
        elif "(at end of document)" in message:  # tomllib gives no position for this one
            lines_in = text.splitlines() or [""]
            line, column = len(lines_in), len(lines_in[-1]) + 1
            message = message.replace(" (at end of document)", " at the end of the file")
        return values, [Problem(source_name, line, "", f"not valid TOML: {message}", column)]

    lines = key_lines(text)
    problems: list[Problem] = []
    all_keys = [f"{s}.{k}" for s, keys in schema.items() for k in keys]

    def add(path: tuple[str, ...], message: str, line_path: tuple[str, ...] | None = None) -> None:
        line = lines.get(line_path or path)
        if line is None and len(path) > 1:
            line = lines.get(path[:1])
        problems.append(Problem(source_name, line, ".".join(path), message))

    for section, content in data.items():
        if section not in schema:
            if isinstance(content, dict):
                hint = _did_you_mean(section, list(schema))
                add((section,), f"unknown section [{section}]{hint}")
            else:
                # A key above every [section] header: most often a forgotten header.
                owners = [f"{s}.{section}" for s, keys in schema.items() if section in keys]
                hint = f" — did you mean {owners[0]!r}?" if owners else _did_you_mean(
                    section, all_keys
                )
                add((section,), f"unknown setting outside any [section]{hint}")
            continue
        if not isinstance(content, dict):
            add((section,), f"expected a [{section}] section, got {describe_value(content)}")
            continue
        fields = schema[section]
        for key, value in content.items():
            path = (section, key)
            if key not in fields:
                close = _closest(key, list(fields))
                elsewhere = [f"{s}.{key}" for s in schema if key in schema[s]]
                if close:
                    hint = f" — did you mean '{section}.{close}'?"
                elif elsewhere:  # right key, wrong section
                    hint = f" — did you mean {elsewhere[0]!r}?"
                else:
                    hint = ""
                add(path, f"unknown key{hint}")
                continue
            converted, complaint = check_value(fields[key], value)
            values[section][key] = converted
            if complaint:
                add(path, complaint)
        for key, field in fields.items():
            if field.required and key not in content:
                add((section, key), f"missing — {field.help or 'this key is required'}")
    for section, fields in schema.items():
        if section in data:
            continue
        for key, field in fields.items():
            if field.required:
                problems.append(
                    Problem(source_name, None, f"{section}.{key}",
                            f"missing (no [{section}] section) — {field.help or 'required'}")
                )
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    return values, problems


def render_defaults(schema: Schema) -> str:
    """A commented TOML file with every key at its default (for `appliance config --defaults`)."""

    def toml(value: Any) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, (str, Path)):
            return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(value, list):
            return "[" + ", ".join(toml(v) for v in value) + "]"
        return repr(value)

    out: list[str] = []
    for section, fields in schema.items():
        out.append(f"[{section}]")
        for key, field in fields.items():
            line = f"{key} = {toml(field.default)}"
            if field.help:
                line = f"{line:<40}# {field.help}"
            out.append(line)
        out.append("")
    return "\n".join(out)
