"""Go-compatible JSON on the wire: decoding like ``encoding/json``, encoding like ``json.Marshal``.

Toxiproxy clients can tell how a Go server decodes: keys match case-insensitively, ``null``
means "absent", unknown keys are ignored, integers must be integers, only the first JSON
value of a body counts. This module reproduces those rules and Go's compact, HTML-escaped
output, so the API layer can stay a thin mapping of routes to the proxy model.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "WireError", "Field", "HugeInt", "json_kind", "decode_value", "decode_into", "go_dumps", "go_float32",
    "float32_text",
]

_INT64 = (-(2**63), 2**63 - 1)


class WireError(ValueError):
    """A request body Go's decoder would reject; ``str()`` is Go's error text."""


@dataclass(frozen=True)
class Field:
    """One field of a Go struct: its JSON key and its Go type (string, bool, int64, int, float32)."""

    key: str
    go_type: str


def decode_value(body: bytes) -> Any:
    """Decode the first JSON value of ``body`` as ``json.NewDecoder(r).Decode`` does."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise WireError("EOF")
    try:
        value, _end = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int).raw_decode(stripped)
    except json.JSONDecodeError as exc:
        raise WireError(_go_syntax_message(stripped, exc)) from None
    except _ConstantRejected as exc:
        raise WireError(f"invalid character '{str(exc)[0]}' looking for beginning of value") from None
    except RecursionError:
        raise WireError("exceeded max depth") from None
    try:
        return _replace_lone_surrogates(value)
    except RecursionError:
        raise WireError("exceeded max depth") from None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_lone_surrogates(value: Any) -> Any:
    """Go decodes an unpaired ``\\ud800`` escape as U+FFFD; Python keeps it (and cannot encode it)."""
    if isinstance(value, HugeInt):
        return value
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if isinstance(value, list):
        return [_replace_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_lone_surrogates(k): _replace_lone_surrogates(v) for k, v in value.items()}
    return value


class HugeInt:
    """An integer literal too long for Python's ``int()`` (over 4,300 digits), kept as text.

    Go decodes it as a number that fits no field, so any field it lands in refuses it (400);
    where Go ignores a key, it is ignored here too.
    """

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"HugeInt({_number_shown(self.text)})"


def _parse_int(text: str) -> int | HugeInt:
    try:
        return int(text)
    except ValueError:
        return HugeInt(text)


def _number_shown(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}...({len(text.lstrip('-'))} digits)"


class _ConstantRejected(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _ConstantRejected(name)


def _go_syntax_message(text: str, exc: json.JSONDecodeError) -> str:
    if exc.pos >= len(text):
        return "unexpected EOF"
    char = text[exc.pos]
    if "Expecting value" in exc.msg:
        return f"invalid character '{char}' looking for beginning of value"
    if "Expecting property name" in exc.msg:
        return f"invalid character '{char}' looking for beginning of object key string"
    if "Expecting ',' delimiter" in exc.msg:
        where = "object" if _inside_object(text, exc.pos) else "array element"
        if where == "object":
            return f"invalid character '{char}' after object key:value pair"
        return f"invalid character '{char}' after array element"
    if "Expecting ':' delimiter" in exc.msg:
        return f"invalid character '{char}' after object key"
    if "Invalid control character" in exc.msg:
        return f"invalid character {char!r} in string literal"
    return f"invalid character '{char}' looking for beginning of value"


def _inside_object(text: str, pos: int) -> bool:
    depth: list[str] = []
    in_string = escaped = False
    for char in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth.append(char)
        elif char in "]}" and depth:
            depth.pop()
    return bool(depth) and depth[-1] == "{"


def json_kind(value: Any) -> str:
    """The JSON kind Go names in its decode errors (bool, number, string, array, object)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, HugeInt):
        return "number"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def decode_into(
    target: dict[str, Any], value: Any, fields: list[Field], struct_name: str, path: str = ""
) -> dict[str, Any]:
    """Decode a JSON object into ``target`` like Go decodes into a struct holding defaults.

    Keys match fields case-insensitively (the last duplicate wins), ``null`` leaves the
    default, unknown keys are ignored. Returns ``target``. Raises :class:`WireError` with
    Go's ``json: cannot unmarshal ...`` text on a type mismatch.
    """
    if value is None:
        return target
    if not isinstance(value, dict):
        raise WireError(
            f"json: cannot unmarshal {json_kind(value)} into Go value of type {_go_value_type(struct_name, path)}"
        )
    by_key = {f.key.lower(): f for f in fields}
    first_error: WireError | None = None
    for key, item in value.items():
        field = by_key.get(key.lower())
        if field is None or item is None:
            continue
        try:
            target[field.key] = _convert(item, field, struct_name, path)
        except WireError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return target


def _go_value_type(struct_name: str, path: str) -> str:
    return f"toxiproxy.{struct_name}" if not path else f"toxics.{struct_name}"


def _mismatch(item: Any, where: str) -> WireError:
    return WireError(f"json: cannot unmarshal {json_kind(item)} into {where}")


def _as_string(item: Any, where: str) -> str:
    if isinstance(item, str):
        return item
    raise _mismatch(item, where)


def _as_bool(item: Any, where: str) -> bool:
    if isinstance(item, bool):
        return item
    raise _mismatch(item, where)


def _as_int64(item: Any, where: str) -> int:
    if isinstance(item, int) and not isinstance(item, bool):
        if _INT64[0] <= item <= _INT64[1]:
            return item
        raise WireError(f"json: cannot unmarshal number {item} into {where}")
    if isinstance(item, float):
        raise WireError(f"json: cannot unmarshal number {_number_text(item)} into {where}")
    raise _mismatch(item, where)


def _as_float32(item: Any, where: str) -> float:
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        as_float = float(item)
        if math.isfinite(as_float) and abs(as_float) <= 3.4028234663852886e38:
            return _to_float32(as_float)
        raise WireError(f"json: cannot unmarshal number {item} into {where}")
    raise _mismatch(item, where)


_CONVERTERS: dict[str, Callable[[Any, str], Any]] = {
    "string": _as_string, "bool": _as_bool, "int64": _as_int64, "int": _as_int64, "float32": _as_float32,
}
"""Go field types by name, each a conversion that raises Go's decode error on a mismatch."""


def _convert(item: Any, field: Field, struct_name: str, path: str) -> Any:
    where = f"Go struct field {struct_name}.{path}{field.key} of type {field.go_type}"
    if isinstance(item, HugeInt):
        if field.go_type in ("int64", "int", "float32"):
            raise WireError(f"json: cannot unmarshal number {_number_shown(item.text)} into {where}")
        raise WireError(f"json: cannot unmarshal number into {where}")
    return _CONVERTERS[field.go_type](item, where)


def _number_text(value: float) -> str:
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _to_float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def float32_text(value: float) -> str:
    """Format a float32 the way Go's ``json.Marshal`` does (shortest round-trip form)."""
    value = _to_float32(value)
    if value == 0:
        return "0"
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if _to_float32(float(text)) == value:
            break
    number = float(text)
    exponent = math.floor(math.log10(abs(number)))
    if -6 <= exponent < 21:
        formatted = f"{number:.{max(0, digits - 1 - exponent)}f}"
        if "." in formatted:
            formatted = formatted.rstrip("0").rstrip(".")
        return formatted
    mantissa, _, exp = f"{number:.{digits - 1}e}".partition("e")
    sign = exp[0]
    exp_digits = exp[1:].lstrip("0").rjust(2 if sign == "+" else 1, "0")
    return f"{mantissa}e{sign}{exp_digits}"


class _Float32(float):
    """A float that :func:`go_dumps` writes as a Go float32."""


def go_float32(value: float) -> float:
    """Mark ``value`` to be encoded as a Go float32 by :func:`go_dumps`."""
    return _Float32(value)


_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    if any(c in encoded for c in _ESCAPES):
        encoded = "".join(_ESCAPES.get(c, c) for c in encoded)
    return encoded


def go_dumps(value: Any) -> str:
    """Compact JSON as Go's ``json.Marshal`` writes it (dict order kept, HTML-escaped strings)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, _Float32):
        return float32_text(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_go_string(k)}:{go_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_dumps(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")
