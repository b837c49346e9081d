"""The one parser each for the units drills are written in.

    durations     "250ms", "20s", "2m", "1h", "1.5s", "500us"      -> seconds (float)
    rates         "20/s", "600/m", "5/h"                          -> events per second (float)
    sizes         "64KB", "1MiB", "512B", 4096                    -> bytes (int)
    bandwidths    "100KB/s", "1MB/s"                              -> bytes per second (int)
    percentages   "20%", "12.5%"                                  -> fraction (0.2, 0.125)

A unit is always written: a bare number is refused for a duration, a rate or a percentage
(is ``20`` seconds or milliseconds?). Sizes are the exception: a bare integer is a count of
bytes, which is what the number means with or without "B". Every parser raises
``ValueError`` whose message says what a right value looks like; the models turn that into
a located problem.
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
    "parse_duration",
    "parse_rate",
    "parse_size",
    "parse_bandwidth",
    "parse_percentage",
    "format_duration",
]

_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)"

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

DURATION_PATTERN = rf"^{_NUMBER}(us|µs|ms|s|m|h)$"
RATE_PATTERN = rf"^{_NUMBER}/(s|m|h)$"
SIZE_PATTERN = rf"^{_NUMBER}(B|KB|MB|GB|KiB|MiB|GiB)$"
BANDWIDTH_PATTERN = rf"^{_NUMBER}(B|KB|MB|GB|KiB|MiB|GiB)/s$"
PERCENTAGE_PATTERN = rf"^{_NUMBER}%$"

_DURATION_RE = re.compile(rf"\s*({_NUMBER})\s*(us|µs|ms|s|m|h)\s*")
_RATE_RE = re.compile(rf"\s*({_NUMBER})\s*/\s*(s|m|h)\s*")
_SIZE_RE = re.compile(rf"\s*({_NUMBER})\s*(B|KB|MB|GB|KiB|MiB|GiB)\s*")
_BANDWIDTH_RE = re.compile(rf"\s*({_NUMBER})\s*(B|KB|MB|GB|KiB|MiB|GiB)\s*/\s*s\s*")
_PERCENTAGE_RE = re.compile(rf"\s*({_NUMBER})\s*%\s*")

# Longer than any drill; also keeps every value far from float overflow.
_MAX_SECONDS = 366 * 24 * 3600.0
_MAX_BYTES = 2**53


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _finite(number: float, value: object, right: str) -> float:
    if not math.isfinite(number):
        raise ValueError(f"{_shown(value)} is not a finite number; {right}")
    return number


def parse_duration(value: object) -> float:
    """Seconds in a duration such as ``"250ms"``, ``"20s"``, ``"2m"``, ``"1h"`` or ``"1.5s"``."""
    right = "write a duration with its unit, like '250ms', '20s', '2m' or '1h'"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a duration, got {_shown(value)}; {right}")
    if not isinstance(value, str):
        raise ValueError(f"{_shown(value)} has no unit; {right}")
    match = _DURATION_RE.fullmatch(value)
    if not match:
        if re.fullmatch(rf"\s*{_NUMBER}\s*", value):
            raise ValueError(f"{_shown(value)} has no unit; {right}")
        if value.strip().startswith("-"):
            raise ValueError(f"{_shown(value)} is negative; durations are 0 or more ({right})")
        raise ValueError(f"{_shown(value)} is not a duration; {right}")
    number, unit = match.groups()
    seconds = _finite(float(number), value, right) * _DURATION_UNITS[unit]
    if seconds > _MAX_SECONDS:
        raise ValueError(f"{_shown(value)} is longer than a year; {right}")
    return seconds


def parse_rate(value: object) -> float:
    """Events per second in a rate such as ``"20/s"`` or ``"600/m"``."""
    right = "write a rate as a count per unit of time, like '20/s' or '600/m'"
    if not isinstance(value, str):
        raise ValueError(f"expected a rate, got {_shown(value)}; {right}")
    match = _RATE_RE.fullmatch(value)
    if not match:
        raise ValueError(f"{_shown(value)} is not a rate; {right}")
    number, unit = match.groups()
    rate = _finite(float(number), value, right) / _RATE_UNITS[unit]
    if rate <= 0:
        raise ValueError(f"{_shown(value)} is zero; a rate must be more than 0 ({right})")
    if rate > 1e6:
        raise ValueError(f"{_shown(value)} is more than a million per second; {right}")
    return rate


def parse_size(value: object) -> int:
    """Bytes in a size such as ``"64KB"`` (1000-based), ``"1MiB"`` (1024-based) or ``4096``."""
    right = "write a size like '64KB', '1MiB', '512B' or a whole number of bytes"
    if isinstance(value, bool):
        raise ValueError(f"expected a size, got {_shown(value)}; {right}")
    if isinstance(value, int):
        number: float = value
    elif isinstance(value, str):
        match = _SIZE_RE.fullmatch(value)
        if not match:
            if re.fullmatch(r"\s*\d+\s*", value):
                number = int(value)
            else:
                raise ValueError(f"{_shown(value)} is not a size; {right}")
        else:
            digits, unit = match.groups()
            number = _finite(float(digits), value, right) * _SIZE_UNITS[unit]
    else:
        raise ValueError(f"expected a size, got {_shown(value)}; {right}")
    if number < 0:
        raise ValueError(f"{_shown(value)} is negative; {right}")
    if number > _MAX_BYTES:
        raise ValueError(f"{_shown(value)} is too large; {right}")
    if number != int(number):
        raise ValueError(f"{_shown(value)} is not a whole number of bytes; {right}")
    return int(number)


def parse_bandwidth(value: object) -> int:
    """Bytes per second in a bandwidth such as ``"100KB/s"`` or ``"1MiB/s"``."""
    right = "write a bandwidth as a size per second, like '100KB/s' or '1MB/s'"
    match = _BANDWIDTH_RE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{_shown(value)} is not a bandwidth; {right}")
    size = parse_size("".join(match.groups()))
    if size <= 0:
        raise ValueError(f"{_shown(value)} is zero; a bandwidth must be more than 0 ({right})")
    return size


def parse_percentage(value: object) -> float:
    """The fraction in a percentage such as ``"20%"`` (0.2)."""
    right = "write a percentage like '20%' or '12.5%'"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a percentage, got {_shown(value)}; {right}")
    if not isinstance(value, str):
        raise ValueError(f"{_shown(value)} has no '%'; {right}")
    match = _PERCENTAGE_RE.fullmatch(value)
    if not match:
        raise ValueError(f"{_shown(value)} is not a percentage; {right}")
    percent = _finite(float(match.group(1)), value, right)
    if percent > 100:
        raise ValueError(f"{_shown(value)} is more than 100%; {right}")
    return percent / 100


def format_duration(seconds: float) -> str:
    """A short human form of a duration in seconds (``0.25`` -> ``"250ms"``), for messages."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
