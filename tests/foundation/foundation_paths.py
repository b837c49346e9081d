"""Paths shared by the foundation tests (a plain module: a second conftest.py would clash)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
EXAMPLES = sorted(
    [*(ROOT / "stacks").rglob("*.yaml"), *(ROOT / "scenarios").rglob("*.yaml"), *(ROOT / "drills").rglob("*.yaml")]
)
"""Every committed example document (``faultlab validate`` walks folders recursively)."""

VALID = Path(__file__).resolve().parent / "valid"
"""Valid documents in unusual but correct YAML (anchors, merge keys, CRLF, Japanese)."""
