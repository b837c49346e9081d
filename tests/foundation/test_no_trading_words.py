"""faultlab knows nothing of orders: no trading concept in the code of src/faultlab/.

Every system's words come from its plugin's declaration (tradingstack declares orders,
executions, the market open); the harness speaks of requests, acknowledgements, completion,
jobs and deadlines. This test reads every source, template and data file of the package
(code, strings and docstrings alike) for the trading stack's concepts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import faultlab

PACKAGE = Path(faultlab.__file__).parent

TRADING = re.compile(
    r"\b(orders?|order[_ ]ids?|client[_ ]order|executions?|executed|fills?|filled|cash|positions?|"
    r"market(s| open| opens)?|batch(es)?|stop[_ -]orders?|trad(e|es|ing|er|ers)|brokerage|exchange|"
    r"settlement)\b|注文|約定|建玉|取引|寄り付き|開場|バッチ",
    re.IGNORECASE,
)
"""The trading stack's concepts, in English and Japanese (Japanese has no word boundaries)."""

GENERIC = [
    # English that only looks like a trading word: a sequence ("in creation order", "the
    # order of"), Python's dataclass(order=True), a ledger's clean-up order, "zero-filled".
    r"\bin [\w'. ]{0,30}\border\b",
    r"\b(creation|key|field|Go's|dict|document's|start|file|journal|declaration|the same) order\b",
    r"\border of\b", r"\border=", r"\border:\s*int\b", r"\.order\b", r"\border\[", r"\b_?order\b(?= *[=:\[])",
    r"\bzero-filled\b", r"\bfilled (from|in)\b", r"\bfills? (it|them) in\b",
]
_ALLOWED = re.compile("|".join(GENERIC), re.IGNORECASE)

PER_FOLDER = {"loader": re.compile(r"\bpositions?\b", re.IGNORECASE)}
"""The loader's positions are where a YAML value stands (line and column), not holdings."""


def _sources() -> list[Path]:
    suffixes = {".py", ".j2", ".json", ".yaml", ".md", ".sql", ".html"}
    return sorted(p for p in PACKAGE.rglob("*") if p.suffix in suffixes and "__pycache__" not in p.parts)


def _trading_words(text: str, folder: str = "") -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        cleaned = _ALLOWED.sub(" ", line)
        if folder in PER_FOLDER:
            cleaned = PER_FOLDER[folder].sub(" ", cleaned)
        found += [f"{number}: {m.group(0)!r} in {line.strip()[:100]}" for m in TRADING.finditer(cleaned)]
    return found


def test_the_pattern_finds_what_it_must():
    assert _trading_words("an order was lost") and _trading_words("lost_orders: 0") == []  # underscores join words
    assert _trading_words("the market opens") and _trading_words("約定遅延") and _trading_words("nightly batch")
    assert _trading_words("in order to check, in file order") == []


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_trading_concept_in_the_harness(path: Path):
    words = _trading_words(path.read_text(encoding="utf-8"), path.relative_to(PACKAGE).parts[0])
    assert not words, f"{path.relative_to(PACKAGE)} speaks of trading:\n" + "\n".join(words)
