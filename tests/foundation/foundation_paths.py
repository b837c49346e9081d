"""Paths shared by the foundation tests (a plain module: a second conftest.py would clash)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
EXAMPLES = sorted(
    [*(ROOT / "stacks").rglob("*.yaml"), *(ROOT / "scenarios").rglob("*.yaml"), *(ROOT / "drills").rglob("*.yaml")]
)
"""Every committed example document (``faultlab validate`` walks folders recursively), the
stacks' Prometheus rules files among them."""

RULES = [p for p in EXAMPLES if p.name.endswith("-alerts.yaml")]
"""The Prometheus rules files among the examples (stacks/trading-alerts.yaml): not documents
of faultlab's schemas; ``faultlab validate`` checks their shape."""

DOCUMENTS = [p for p in EXAMPLES if p not in RULES]
"""The examples that are stacks, scenarios and drill plans."""

VALID = Path(__file__).resolve().parent / "valid"
"""Valid documents in unusual but correct YAML (anchors, merge keys, CRLF, Japanese)."""
