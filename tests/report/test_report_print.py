"""report.html printed to PDF by headless Chromium: the running header (run ID and evidence
digest) and page x / y on every page, table headers repeated, no heading left at a page's foot.

The text of each page comes from ``pdftotext`` (poppler-utils; .ci/run installs it), pages
split at form feeds. Chromium's own header and footer are switched off
(``--no-pdf-header-footer``), so whatever heads and numbers a page comes from the report's
print stylesheet; a control copy without that stylesheet shows none of it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from synthetic_run import RunSpec, write_run

from faultlab.report import write_reports
from headless_chromium import CHROMIUM, FLAGS, needs_chromium

PDFTOTEXT = shutil.which("pdftotext")
pytestmark = [
    needs_chromium,
    pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext is not installed (apt-get install -y poppler-utils)"),
]
JOB = {"started_t": 1.0, "finished_t": 50.0, "window_s": 60, "deadline_t": 55.0, "ok": True,
       "deadline_name": {"en": "the market opens", "ja": "取引開始"}}
NOTES = 70
"""Journal notes added to the run, so that the timeline table runs over several pages."""


def japanese_font() -> bool:
    found = subprocess.run(["fc-list", ":lang=ja"], capture_output=True, text=True) if shutil.which("fc-list") else None
    return bool(found and found.stdout.strip())


def print_pdf(page: Path, tmp_path: Path) -> list[str]:
    """Print ``page`` with a fresh profile; the text of each page of the PDF."""
    pdf = tmp_path / f"{page.stem}.pdf"
    subprocess.run([CHROMIUM, *FLAGS, "--no-pdf-header-footer",
                    f"--user-data-dir={tmp_path / ('profile-' + page.stem)}",
                    f"--print-to-pdf={pdf}", page.resolve().as_uri()],
                   capture_output=True, timeout=180, check=True)
    text = subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, text=True, timeout=60,
                          check=True).stdout
    return [p for p in text.split("\f") if p.strip()]


def squeezed(text: str) -> str:
    return "".join(text.split())


def headings(page: str) -> list[str]:
    return [squeezed(re.sub(r"<[^>]+>", "", h)) for h in re.findall(r"<h[23][^>]*>(.*?)</h[23]>", page)]


def last_body_line(page: str) -> str:
    """The last line of a page's own text, its running footer (page x / y) left out."""
    lines = [line for line in page.splitlines() if line.strip()]
    while lines and re.search(r"(page|ページ) \d+ / \d+\s*$", lines[-1]):
        lines.pop()
    return squeezed(lines[-1]) if lines else ""


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    root = tmp_path_factory.mktemp("print")
    run = write_run(root, RunSpec(planned_at=18.0, job=JOB, scenario_texts={
        "title": {"en": "Order database stalls for 10 s", "ja": "注文データベースが 10 秒間停止する"}}))
    journal = run / "journal.jsonl"
    lines = journal.read_text(encoding="utf-8").splitlines()
    notes = [json.dumps({"type": "note", "t": 40.0 + i / 10, "level": "info", "message": f"progress note {i}"})
             for i in range(NOTES)]
    journal.write_text("\n".join(lines[:-1] + notes + lines[-1:]) + "\n", encoding="utf-8")
    write_reports(run, langs=("en", "ja"))
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    return run, manifest["evidence"]["sha256"], root


@pytest.mark.parametrize("name, page_word, run_label, digest_label, time_header", [
    ("report.html", "page", "Run ID", "Evidence digest (SHA-256)", "Time (UTC)"),
    ("report.ja.html", "ページ", "実施 ID", "証跡ダイジェスト（SHA-256）", "時刻（UTC）"),
])
def test_every_printed_page_carries_the_run_id_the_digest_and_its_number(printed, name, page_word, run_label,
                                                                         digest_label, time_header):
    run, digest, root = printed
    if name == "report.ja.html" and not japanese_font():
        pytest.skip("no Japanese font (apt-get install -y fonts-ipafont-gothic): the Japanese labels print as boxes")
    pages = print_pdf(run / name, root)
    total = len(pages)
    assert total >= 4, "the report with its long timeline runs over several pages"
    for number, page in enumerate(pages, start=1):
        head = squeezed("\n".join(page.splitlines()[:3]))
        assert squeezed(f"{run_label} run-0001") in head, (number, head)
        assert squeezed(f"{digest_label} {digest}") in head, (number, head)
        assert re.search(rf"{page_word} {number} / {total}\s*$", page.rstrip()), (number, page[-200:])

    # The timeline table runs over pages; each page that shows its rows shows its header first.
    spread = [page for page in pages if "progress note" in page or "progressnote" in squeezed(page)]
    assert len(spread) >= 2
    for page in spread:
        body = squeezed(page)
        assert squeezed(time_header) in body and body.index(squeezed(time_header)) < body.index("progressnote")

    # No heading is left alone at the foot of a page.
    titles = set(headings((run / name).read_text(encoding="utf-8")))
    assert titles
    orphans = [(number, last_body_line(page)) for number, page in enumerate(pages, start=1)
               if last_body_line(page) in titles]
    assert orphans == []


def test_without_the_print_stylesheet_the_pages_carry_none_of_it(printed):
    """The control: Chromium adds no header or number of its own, so the checks above test the
    report's stylesheet."""
    run, digest, root = printed
    page = (run / "report.html").read_text(encoding="utf-8")
    bare = re.sub(r"@page \{.*?\n\}\n", "", page, flags=re.S)
    assert bare != page
    control = root / "control" / "report.html"
    control.parent.mkdir()
    control.write_text(bare, encoding="utf-8")
    pages = print_pdf(control, root / "control")
    assert len(pages) >= 3
    assert not any(re.search(r"page \d+ / \d+", p) for p in pages)
    heads = [squeezed("\n".join(p.splitlines()[:3])) for p in pages]
    assert sum(digest in head for head in heads) <= 1, "the digest is in the report's text, not at each page's head"
