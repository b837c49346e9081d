"""The one parser each for the units drills are written in.

    durations     "250ms", "20s", "2m", "1h", "1.5s", "500us"      -> seconds (float)
    rates         "20/s", "600/m", "5/h"                          -> events per second (float)
    sizes         "64KB", "1MiB", "512B", 4096                    -> bytes (int)
    bandwidths    "100KB/s", "1MB/s"                              -> bytes per second (int)
    percentages   "20%", "12.5%"                                  -> fraction (0.2, 0.125)
    tolerances    "+20%", "+1s", "+0"                             -> (amount, "%" | "s" | None)

A unit is always written: a bare number is refused for a duration, a rate or a percentage
(is ``20`` seconds or milliseconds?). Sizes are the exception: a bare integer is a count of
bytes, which is what the number means with or without "B". Every parser raises
``ValueError`` whose message says what a right value looks like; the models turn that into
a located problem.

Each unit's regular expression is also its JSON Schema ``pattern`` (the ``*_PATTERN``
constants), so an editor and the loader agree on what is written right; only an amount out
of range (:class:`OutOfRange`) is the loader's alone to tell. Spaces around the value and
between a number and its unit are allowed: ``"100 ms"`` is ``"100ms"``.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "DURATION_PATTERN",
    "RATE_PATTERN",
    "SIZE_PATTERN",
    "BANDWIDTH_PATTERN",
    "PERCENTAGE_PATTERN",
    "TOLERANCE_PATTERN",
    "MAX_BYTES",
    "OutOfRange",
    "parse_duration",
    "parse_rate",
    "parse_size",
    "parse_bandwidth",
    "parse_percentage",
    "parse_tolerance",
    "format_duration",
]

_NUMBER = r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
# Spaces: around the text (a quoted YAML value may have them) and between a number and its
# unit ("100 ms"). Written out, not \s or \d: JSON Schema patterns are ECMAScript regular
# expressions, where \s and \d mean other characters than in Python's re.
_EDGE = r"[ \t\r\n]*"
_GAP = r"[ \t]*"

_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE_UNITS = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
}
_SIZE_UNIT = "(B|KB|MB|GB|KiB|MiB|GiB)"

# Each pattern is both the parser's and the JSON Schema's (so they cannot disagree on the
# form): anchored, capture groups only (no named groups, no lookbehind: ECMAScript-safe).
# A trailing newline is inside _EDGE, so Python's "$ before a final newline" changes nothing.
DURATION_PATTERN = rf"^{_EDGE}{_NUMBER}{_GAP}(us|µs|ms|s|m|h){_EDGE}$"
RATE_PATTERN = rf"^{_EDGE}{_NUMBER}{_GAP}/{_GAP}(s|m|h){_EDGE}$"
SIZE_PATTERN = rf"^{_EDGE}(?:([0-9]+)|{_NUMBER}{_GAP}{_SIZE_UNIT}){_EDGE}$"
BANDWIDTH_PATTERN = rf"^{_EDGE}{_NUMBER}{_GAP}{_SIZE_UNIT}{_GAP}/{_GAP}s{_EDGE}$"
PERCENTAGE_PATTERN = rf"^{_EDGE}{_NUMBER}{_GAP}%{_EDGE}$"
TOLERANCE_PATTERN = rf"^{_EDGE}\+?{_NUMBER}{_GAP}(%|us|µs|ms|s|m|h)?{_EDGE}$"

_DURATION_RE = re.compile(DURATION_PATTERN)
_RATE_RE = re.compile(RATE_PATTERN)
_SIZE_RE = re.compile(SIZE_PATTERN)
_BANDWIDTH_RE = re.compile(BANDWIDTH_PATTERN)
_PERCENTAGE_RE = re.compile(PERCENTAGE_PATTERN)
_TOLERANCE_RE = re.compile(TOLERANCE_PATTERN)
_BARE_NUMBER_RE = re.compile(rf"^{_EDGE}[-+]?{_NUMBER}{_EDGE}$")

# Longer than any drill; also keeps every value far from float overflow.
_MAX_SECONDS = 366 * 24 * 3600.0
_MAX_BYTES = 2**53
MAX_BYTES = _MAX_BYTES
"""The largest size (bytes) and bandwidth (bytes per second) a document may give."""


class OutOfRange(ValueError):
    """A value written in the right form whose amount is not allowed.

    A duration over a year, a zero or huge rate, more than 100 %, a fraction of a byte:
    a JSON Schema pattern checks the form only, so only the loader can tell these.
    """


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _finite(number: float, value: object, right: str) -> float:
    if not math.isfinite(number):
        raise OutOfRange(f"{_shown(value)} is not a finite number; {right}")
    return number


def _match(pattern: re.Pattern[str], value: object) -> re.Match[str] | None:
    return pattern.match(value) if isinstance(value, str) else None


def parse_duration(value: object) -> float:
    """Seconds in a duration such as ``"250ms"``, ``"20s"``, ``"2m"``, ``"1h"`` or ``"1.5s"``."""
    right = "write a duration with its unit, like '250ms', '20s', '2m' or '1h'"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a duration, got {_shown(value)}; {right}")
    match = _match(_DURATION_RE, value)
    if match is None:
        if not isinstance(value, str) or _BARE_NUMBER_RE.match(value):
            raise ValueError(f"{_shown(value)} has no unit; {right}")
        if value.strip().startswith("-"):
            raise ValueError(f"{_shown(value)} is negative; durations are 0 or more ({right})")
        raise ValueError(f"{_shown(value)} is not a duration; {right}")
    number, unit = match.groups()
    seconds = _finite(float(number), value, right) * _DURATION_UNITS[unit]
    if seconds > _MAX_SECONDS:
        raise OutOfRange(f"{_shown(value)} is longer than a year; {right}")
    return seconds


def parse_rate(value: object) -> float:
    """Events per second in a rate such as ``"20/s"`` or ``"600/m"``."""
    right = "write a rate as a count per unit of time, like '20/s' or '600/m'"
    if not isinstance(value, str):
        raise ValueError(f"expected a rate, got {_shown(value)}; {right}")
    match = _match(_RATE_RE, value)
    if match is None:
        raise ValueError(f"{_shown(value)} is not a rate; {right}")
    number, unit = match.groups()
    rate = _finite(float(number), value, right) / _RATE_UNITS[unit]
    if rate <= 0:
        raise OutOfRange(f"{_shown(value)} is zero; a rate must be more than 0 ({right})")
    if rate > 1e6:
        raise OutOfRange(f"{_shown(value)} is more than a million per second; {right}")
    return rate


def parse_size(value: object) -> int:
    """Bytes in a size such as ``"64KB"`` (1000-based), ``"1MiB"`` (1024-based) or ``4096``."""
    right = "write a size like '64KB', '1MiB', '512B' or a whole number of bytes"
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 4096.0 is 4096, as JSON Schema's "integer" says
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{_shown(value)} is negative; {right}")
        if value > _MAX_BYTES:
            raise ValueError(f"{_shown(value)} is too large; {right}")
        return value
    match = _match(_SIZE_RE, value)
    if match is None:
        if isinstance(value, str):
            raise ValueError(f"{_shown(value)} is not a size; {right}")
        raise ValueError(f"expected a size, got {_shown(value)}; {right}")
    count, number, unit = match.groups()
    size = float(count) if count is not None else _finite(float(number), value, right) * _SIZE_UNITS[unit]
    if size > _MAX_BYTES:
        raise OutOfRange(f"{_shown(value)} is too large; {right}")
    if size != int(size):
        raise OutOfRange(f"{_shown(value)} is not a whole number of bytes; {right}")
    return int(size)


def parse_bandwidth(value: object) -> int:
    """Bytes per second in a bandwidth such as ``"100KB/s"`` or ``"1MiB/s"``."""
    right = "write a bandwidth as a size per second, like '100KB/s' or '1MB/s'"
    match = _match(_BANDWIDTH_RE, value)
    if match is None:
        raise ValueError(f"{_shown(value)} is not a bandwidth; {right}")
    size = parse_size("".join(match.groups()))
    if size <= 0:
        raise OutOfRange(f"{_shown(value)} is zero; a bandwidth must be more than 0 ({right})")
    return size


def parse_percentage(value: object) -> float:
    """The fraction in a percentage such as ``"20%"`` (0.2)."""
    right = "write a percentage like '20%' or '12.5%'"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a percentage, got {_shown(value)}; {right}")
    if not isinstance(value, str):
        raise ValueError(f"{_shown(value)} has no '%'; {right}")
    match = _match(_PERCENTAGE_RE, value)
    if match is None:
        raise ValueError(f"{_shown(value)} is not a percentage; {right}")
    percent = _finite(float(match.group(1)), value, right)
    if percent > 100:
        raise OutOfRange(f"{_shown(value)} is more than 100%; {right}")
    return percent / 100


def parse_tolerance(value: object) -> tuple[float, str | None]:
    """How much worse than a baseline is allowed: ``"+20%"`` -> ``(0.2, "%")``, ``"+1s"`` -> ``(1.0, "s")``.

    A bare number (``+0``, ``3``) is in the measure's own unit: ``(3.0, None)``. A time is
    given in seconds, whatever unit it was written in.
    """
    right = "write how much worse is allowed, like '+20%', '+1s' or '+0'"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{_shown(value)} is not a tolerance; {right}")
        return float(value), None
    match = _match(_TOLERANCE_RE, value)
    if match is None:
        raise ValueError(f"{_shown(value)} is not a tolerance; {right}")
    number, unit = match.groups()
    amount = _finite(float(number), value, right)
    if unit == "%":
        return amount / 100, "%"
    if unit:
        return parse_duration(number + unit), "s"
    return amount, None


def format_duration(seconds: float) -> str:
    """A short human form of a duration in seconds (``0.25`` -> ``"250ms"``), for messages."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
