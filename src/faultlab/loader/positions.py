"""YAML to plain values, remembering where every key and value sits.

YAML 1.2 core scalars: only ``true``/``false`` are booleans (``restart: no`` is text), no
base-60 numbers, no dates. Tags other than the plain ones, recursive aliases, documents
too large or too deep are problems, never exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from faultlab.errors import Problem

__all__ = [
    "Loc",
    "Parsed",
    "parse_yaml",
    "read_document",
    "format_path",
    "display_path",
    "short",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "MAX_DEPTH",
]

MAX_FILE_BYTES = 2_000_000
MAX_NODES = 200_000
MAX_DEPTH = 64

Loc = tuple[Any, ...]
"""A place in a document: mapping keys and sequence indexes (``("timeline", 0, "for")``)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars: no yes/no/on/off booleans, no base-60, no dates."""

    yaml_implicit_resolvers: dict[Any, Any] = {}


for _tag, _pattern, _first in [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("merge", r"^(?:<<)$", "<"),
]:
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"


@dataclass
class Parsed:
    """A YAML document as plain values, with the position of every value and key.

    Positions are ``(line, column)``, 1-based, keyed by the path of the value: a tuple of
    mapping keys and sequence indexes (``("timeline", 0, "for")``).
    """

    file: str
    data: Any = None
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    unreadable: set[Loc] = field(default_factory=set)
    """Values already reported by the parser (and replaced by None): not reported again."""

    def reported(self, loc: Loc) -> bool:
        """Whether ``loc`` is, or lies inside, a value the parser already reported."""
        return any(tuple(loc[: len(bad)]) == bad for bad in self.unreadable)

    def problem(self, loc: Loc, message: str, *, at_key: bool = False) -> Problem:
        """A problem located at ``loc`` (or at the nearest enclosing node that has a position)."""
        line, column = self.position(tuple(loc), at_key=at_key)
        return Problem(self.file, line, column, format_path(loc), message)

    def add(self, loc: Loc, message: str, *, at_key: bool = False) -> None:
        """Record a problem at ``loc`` (unless the parser reported that value already)."""
        if not self.reported(tuple(loc)):
            self.problems.append(self.problem(loc, message, at_key=at_key))

    def position(self, loc: Loc, *, at_key: bool = False) -> tuple[int, int]:
        """``(line, column)`` of ``loc``, or of the nearest enclosing node that has one."""
        if at_key and loc in self.keys:
            return self.keys[loc]
        while loc:
            if loc in self.values:
                return self.values[loc]
            loc = loc[:-1]
        return self.values.get((), (1, 1))


def format_path(loc: Loc) -> str:
    """``("timeline", 0, "for")`` -> ``timeline[0].for``."""
    text = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", part):
            text += f'["{part}"]'
        else:
            text += f"[{short(part)}]"
    return text


def short(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def display_path(path: Path | str) -> str:
    """A path as shown in messages: relative to the working directory when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def read_document(path: Path) -> Parsed:
    """Read and parse one file; a file that cannot be read is a problem like any other."""
    file = display_path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return Parsed(file, problems=[Problem(file, 0, 0, "", "file not found")])
    except IsADirectoryError:
        return Parsed(file, problems=[Problem(file, 0, 0, "", "is a folder, not a file")])
    except OSError as exc:
        return Parsed(file, problems=[Problem(file, 0, 0, "", f"cannot read: {exc.strerror or exc}")])
    return parse_yaml(raw, file)


def parse_yaml(text: str | bytes, file: str = "<input>") -> Parsed:
    """Parse one YAML document; problems (syntax, tags, size) are in ``.problems``."""
    doc = Parsed(file)
    decoded = _decode(text, file)
    if isinstance(decoded, Problem):
        doc.problems.append(decoded)
        return doc
    composed = _compose(decoded, file)
    if isinstance(composed, Problem):
        doc.problems.append(composed)
        return doc
    node, loader = composed
    if node is None:
        doc.problems.append(Problem(file, 1, 1, "", "the file is empty"))
        return doc
    try:
        doc.data = _Builder(doc, loader).build(node, ())
    except _TooBig as exc:
        doc.problems.append(Problem(file, 0, 0, "", str(exc)))
        doc.data = None
    if doc.data is None and not doc.problems:
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        doc.problems.append(Problem(file, line, column, "", "the document is empty (null)"))
    return doc


def _decode(text: str | bytes, file: str) -> str | Problem:
    if len(text) > MAX_FILE_BYTES:
        return Problem(file, 0, 0, "", f"file is larger than {MAX_FILE_BYTES} bytes")
    if isinstance(text, str):
        return text
    try:
        return text.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = text[: exc.start].count(b"\n") + 1
        column = exc.start - (text.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"not UTF-8 text (byte {text[exc.start]:#04x}); is this a YAML file?"
        return Problem(file, line, column, "", message)


def _compose(text: str, file: str) -> tuple[yaml.Node | None, _Loader] | Problem:
    """The node tree of the one document in ``text`` (aliases still shared), or the problem."""
    loader = None
    try:
        loader = _Loader(text)
        return loader.get_single_node(), loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        return Problem(file, line, column, "", f"YAML syntax: {what}")
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return Problem(file, line, column, "", f"character {exc.character!r} is not allowed in YAML text")
    except yaml.YAMLError as exc:
        return Problem(file, 0, 0, "", f"YAML: {exc}")
    except RecursionError:
        return Problem(file, 0, 0, "", "YAML nested too deeply")
    finally:
        if loader is not None:
            loader.dispose()


class _TooBig(Exception):
    pass


class _Builder:
    """Turns composed YAML nodes into plain values, recording positions and problems."""

    def __init__(self, doc: Parsed, loader: _Loader):
        self.doc = doc
        self.loader = loader
        self.count = 0
        self.active: set[int] = set()

    def _mark(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def _problem(self, node: yaml.Node, loc: Loc, message: str) -> None:
        self.doc.unreadable.add(loc)
        line, column = self._mark(node)
        self.doc.problems.append(Problem(self.doc.file, line, column, format_path(loc), message))

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(f"document has more than {MAX_NODES} values (aliases expanding?)")
        if len(loc) > MAX_DEPTH:
            self._problem(node, loc, f"nested more than {MAX_DEPTH} levels deep")
            return None
        self.doc.values.setdefault(loc, self._mark(node))
        if id(node) in self.active:
            self._problem(node, loc, "an alias refers to a node that contains it (recursive)")
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, loc)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _TAG + "seq":
                    self._problem(node, loc, f"unsupported tag {node.tag!r}")
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, loc)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        """A mapping, its ``<<`` merges resolved: its own keys override merged ones.

        Keys keep the document's order; merged keys stand where the ``<<`` is.
        """
        if node.tag != _TAG + "map":
            self._problem(node, loc, f"unsupported tag {node.tag!r}")
        entries: list[tuple[str, yaml.Node, yaml.Node]] = []
        own: dict[str, int] = {}
        merge_line = 0
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE and isinstance(key_node, yaml.ScalarNode):
                if merge_line:
                    self._problem(key_node, (*loc, "<<"), f"duplicate key '<<' (first at line {merge_line})")
                    continue
                merge_line = key_node.start_mark.line + 1
                entries.append(("<<", key_node, value_node))
                continue
            key = self._key(key_node, loc)
            if key is None:
                continue
            if key in own:
                self._problem(key_node, (*loc, key), f"duplicate key {short(key)} (first at line {own[key]})")
                continue
            own[key] = key_node.start_mark.line + 1
            entries.append((key, key_node, value_node))
        result: dict[Any, Any] = {}
        for key, key_node, value_node in entries:
            pairs = [(key, key_node, value_node)]
            if key == "<<" and key_node.tag == _MERGE:
                pairs = [pair for pair in self._merged(key_node, value_node, loc) if pair[0] not in own]
            for name, name_node, value in pairs:
                if name in result:
                    continue  # merged twice (a list of mappings): the first one wins
                self.doc.keys[(*loc, name)] = self._mark(name_node)
                result[name] = self.build(value, (*loc, name))
        return result

    def _key(self, key_node: yaml.Node, loc: Loc) -> str | None:
        if not isinstance(key_node, yaml.ScalarNode):
            self._problem(key_node, loc, "a key must be plain text, not a list or mapping")
            return None
        key = self._scalar(key_node, (*loc, key_node.value))
        if not isinstance(key, str):
            # Every key of every document is a name; 1, true or null as a key is a slip.
            message = f"a key must be text, not {key!r}; quote it if you meant '{key_node.value}'"
            self._problem(key_node, (*loc, key), message)
            return None
        return key

    def _merged(self, key: yaml.Node, value: yaml.Node, loc: Loc) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """The pairs ``<<: value`` brings in, earlier mappings first (they take precedence)."""
        sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
        pairs: list[tuple[str, yaml.Node, yaml.Node]] = []
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                what = {yaml.ScalarNode: "a single value", yaml.SequenceNode: "a list"}.get(type(source), "nothing")
                self._problem(
                    key,
                    (*loc, "<<"),
                    f"<< merges a mapping (or a list of mappings) into this one, like `<<: *defaults`; got {what}",
                )
            elif id(source) in self.active:
                self._problem(key, (*loc, "<<"), "an alias refers to a node that contains it (recursive)")
            else:
                pairs += _resolved_pairs(source, set())
        return pairs

    def _scalar(self, node: yaml.ScalarNode, loc: Loc) -> Any:
        convert = _SCALARS.get(node.tag)
        if convert is None:
            self._problem(node, loc, f"unsupported tag {node.tag!r}; write plain YAML values")
            return None
        try:
            return convert(node.value)
        except _Unreadable as exc:
            self._problem(node, loc, str(exc))
        except ValueError:
            self._problem(node, loc, f"{short(node.value)} is not a valid {node.tag.rsplit(':', 1)[-1]}")
        return None


def _resolved_pairs(node: yaml.MappingNode, chain: set[int]) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """A merged mapping's keys as ``(key, key node, value node)``, its own ``<<`` resolved too.

    Quiet: the mapping's own mistakes (duplicate or odd keys, bad merges) are reported where
    it is written; here the first of duplicate keys is kept, as there.
    """
    chain = chain | {id(node)}
    own: list[tuple[str, yaml.Node, yaml.Node]] = []
    merged: list[tuple[str, yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        if key_node.tag == _MERGE:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, yaml.MappingNode) and id(source) not in chain:
                    merged += _resolved_pairs(source, chain)
        elif key_node.tag == _TAG + "str":
            own.append((key_node.value, key_node, value_node))
    pairs: dict[str, tuple[str, yaml.Node, yaml.Node]] = {}
    for pair in own + merged:
        pairs.setdefault(pair[0], pair)
    return list(pairs.values())


class _Unreadable(ValueError):
    """A scalar of the right form whose value cannot be used (too large, not finite)."""


def _int(value: str) -> int:
    text = value.replace("_", "")
    if len(text) > 40:
        raise _Unreadable(f"number {short(value)} is far too large")
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


def _float(value: str) -> float:
    text = value.lower().replace("_", "")
    if text.endswith(".nan") or text.endswith(".inf"):
        raise _Unreadable(f"{value} is not a finite number")
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise _Unreadable(f"number {short(value)} is far too large")
    return number


_SCALARS: dict[str, Callable[[str], Any]] = {
    _TAG + "str": lambda value: value,
    _TAG + "null": lambda value: None,
    _TAG + "bool": lambda value: value.lower() == "true",
    _TAG + "int": _int,
    _TAG + "float": _float,
    _MERGE: lambda value: "<<",
}
