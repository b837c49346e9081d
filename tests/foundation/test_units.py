"""The one parser per unit: right values, and messages that say what would be right."""

from __future__ import annotations

import math

import pytest

from faultlab import units


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("20s", 20), ("2m", 120), ("1h", 3600), ("1.5s", 1.5), ("0s", 0), ("500us", 0.0005), (" 3s ", 3)],
)
def test_durations(text: str, seconds: float) -> None:
    assert math.isclose(units.parse_duration(text), seconds)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (20, "has no unit"),
        ("20", "has no unit"),
        ("-5s", "negative"),
        ("20 sec", "not a duration"),
        ("1e999s", "not a duration"),
        (True, "expected a duration"),
        ([1], "expected a duration"),
        ("9999999h", "longer than a year"),
    ],
)
def test_bad_durations_say_what_is_right(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match="like '250ms'") as info:
        units.parse_duration(value)
    assert fragment in str(info.value)


def test_rates() -> None:
    assert units.parse_rate("20/s") == 20
    assert units.parse_rate("600/m") == 10
    assert units.parse_rate("3600/h") == 1
    for bad in ("20", 20, "0/s", "20/d", "fast"):
        with pytest.raises(ValueError, match="like '20/s'"):
            units.parse_rate(bad)


def test_sizes() -> None:
    assert units.parse_size("64KB") == 64_000
    assert units.parse_size("1MiB") == 1_048_576
    assert units.parse_size("512B") == 512
    assert units.parse_size(4096) == 4096
    assert units.parse_size("4096") == 4096
    assert units.parse_size("1.5KB") == 1500
    for bad in ("64 kilobytes", -1, "0.5B", True, 2**60, "1e3KB"):
        with pytest.raises(ValueError, match="like '64KB'"):
            units.parse_size(bad)


def test_bandwidths() -> None:
    assert units.parse_bandwidth("100KB/s") == 100_000
    assert units.parse_bandwidth("1MiB/s") == 1_048_576
    for bad in ("100KB", "0KB/s", 100):
        with pytest.raises(ValueError, match="100KB/s"):
            units.parse_bandwidth(bad)


def test_percentages() -> None:
    assert units.parse_percentage("20%") == pytest.approx(0.2)
    assert units.parse_percentage("12.5%") == pytest.approx(0.125)
    for bad in ("20", 20, "120%", "-5%", None):
        with pytest.raises(ValueError, match="like '20%'"):
            units.parse_percentage(bad)


def test_format_duration() -> None:
    assert units.format_duration(0.25) == "250ms"
    assert units.format_duration(20) == "20s"
    assert units.format_duration(120) == "2m"
