"""Shared paths for the foundation tests (pure: no processes besides the CLI, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
EXAMPLES = sorted(
    [ROOT / "stacks" / "trading.yaml", *(ROOT / "scenarios").glob("*.yaml"), *(ROOT / "drills").glob("*.yaml")]
)


@pytest.fixture
def root() -> Path:
    return ROOT
