"""The Japanese report a Japanese auditor accepts: no English narrative, the glossary's terms.

What counts as an English sentence is written in ``japanese_text.py`` (its docstring).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from japanese_text import (
    ascii_punctuation_in_japanese,
    english_sentences,
    prose_of_html,
    prose_of_markdown,
)
from synthetic_run import Outage, RunSpec, write_run

from faultlab.analysis import analyse
from faultlab.loader import load_plan, load_scenario
from faultlab.model.types import text_json
from faultlab.report import glossary as g
from faultlab.report import write_book, write_reports
from faultlab.report.messages import MESSAGES

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted([*ROOT.glob("scenarios/ft-*.yaml"), *ROOT.glob("examples/payments/scenarios/*.yaml")])

JAPANESE_TEXTS = {
    "title": {"en": "Order database stalls for 10 s", "ja": "注文データベースが 10 秒間停止する"},
    "description": {"en": "The database server processes are stopped while orders flow.",
                    "ja": "注文が流れている間、データベースのサーバープロセスを停止する。"},
    "assumptions": {"en": "One database server, no replica.", "ja": "データベースサーバーは 1 台でレプリカはない。"},
}
PLAN = {
    "title": {"en": "Q4 failure tests", "ja": "第4四半期 障害訓練"},
    "environment": {"en": "local runtime on one machine", "ja": "1 台のマシン上のローカルランタイム"},
    "participants": [
        {"name": {"en": "Drill runner", "ja": "訓練実施者"},
         "role": {"en": "incident commander", "ja": "インシデント指揮者"}},
        {"name": "佐藤", "role": {"en": "operator", "ja": "オペレーター"}},
    ],
    "approvals": [{"name": "伊藤", "role": {"en": "internal audit", "ja": "内部監査"}, "date": "2026-11-26"}],
}
JOB = {"started_t": 1.0, "finished_t": 50.0, "window_s": 60, "deadline_t": 55.0, "ok": True,
       "deadline_name": {"en": "the market opens", "ja": "取引開始"}}


def identifiers(run: Path) -> set[str]:
    """The names a table of this run must show as they are (services, faults, jobs, stack, host)."""
    a = analyse(run)
    names = {a.stack.get("name", ""), a.host or "", *(j.job for j in a.jobs)}
    names |= {f.kind for f in a.faults} | {f.target for f in a.faults}
    names |= {p.stem for p in (run / "services").glob("*.log")}
    for f in a.faults:
        names |= {str(v) for v in f.params.values()}
    return {n for n in names if n}


def japanese_run(parent: Path, texts: dict | None = JAPANESE_TEXTS, **spec) -> Path:
    defaults = {
        "planned_at": 18.0, "job": JOB,
        "integrity_violations": [{"check": "lost_orders", "ids": ["c-77"],
                                  "detail": "lost: acknowledged, then absent"}],
    }
    run = write_run(parent, RunSpec(scenario_texts=dict(texts or {}), **{**defaults, **spec}))
    write_reports(run, langs=("en", "ja"), plan_info=PLAN)
    return run


def prose(run: Path, name: str) -> str:
    text = (run / name).read_text(encoding="utf-8")
    return prose_of_html(text) if name.endswith(".html") else prose_of_markdown(text)


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    return japanese_run(tmp_path_factory.mktemp("ja"))


@pytest.mark.parametrize("name", ["report.ja.md", "report.ja.html"])
def test_the_japanese_report_of_a_scenario_with_japanese_texts_has_no_english_sentence(reported, name):
    found = english_sentences(prose(reported, name), identifiers(reported))
    assert found == [], f"{name}: {len(found)} English sentence(s): {found[:10]}"
    text = (reported / name).read_text(encoding="utf-8")
    for japanese in ("注文データベースが 10 秒間停止する", "データベースサーバーは 1 台でレプリカはない。",
                     "第4四半期 障害訓練", "インシデント指揮者", "訓練実施者", "内部監査", "取引開始"):
        assert japanese in text, japanese


def test_the_count_does_find_english(reported, tmp_path):
    """The rule can fail: the English report is full of sentences, and a Japanese report of a
    scenario written only in English shows its English title, narrative and people."""
    english = english_sentences(prose(reported, "report.md"), identifiers(reported))
    assert len(english) > 100 and "Order database stalls for" in english
    plain = japanese_run(tmp_path, texts={k: v["en"] for k, v in JAPANESE_TEXTS.items()})
    found = english_sentences(prose(plain, "report.ja.md"), identifiers(plain))
    assert "Order database stalls for" in found
    assert any("database server processes are stopped while" in s for s in found)
    assert english_sentences("| Drill runner |") == ["Drill runner"]
    assert english_sentences("`the fault was reverted` db_stall mode=freeze FT-01 SHA-256 RTO ID") == \
        ["the fault was reverted"], "prose_of_markdown removes code, english_sentences does not"
    assert english_sentences(prose_of_markdown("`the fault was reverted` の記録")) == []
    assert english_sentences("faultlab python locust, trading gateway", {"trading", "gateway"}) == []


def test_the_english_report_shows_the_english_variants(reported):
    md = (reported / "report.md").read_text(encoding="utf-8")
    for english in ("Order database stalls for 10 s", "One database server, no replica.", "Q4 failure tests",
                    "incident commander", "Drill runner", "the market opens"):
        assert english in md, english
    assert "注文データベース" not in md and "訓練実施者" not in md


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_the_bundled_scenarios_have_a_japanese_variant_of_every_text(path, tmp_path):
    scenario = load_scenario(path)
    texts = {key: text_json(getattr(scenario, key)) for key in ("title", "description", "assumptions")}
    for key, value in texts.items():
        if value is not None:
            assert isinstance(value, dict) and value.get("ja"), f"{path.name}: `{key}` has no Japanese variant"
    run = japanese_run(tmp_path, texts={k: v for k, v in texts.items() if v is not None})
    found = english_sentences(prose(run, "report.ja.md"), identifiers(run))
    assert found == [], found


def test_the_smoke_plan_has_japanese_texts():
    plan = load_plan(ROOT / "drills" / "smoke.yaml")
    for value in (plan.title, plan.environment, *(p.name for p in plan.participants),
                  *(p.role for p in plan.participants)):
        assert isinstance(text_json(value), dict) and text_json(value)["ja"], value
    assert "ja" in plan.languages


GLOSSARY_IN_CATALOGUE = {
    g.TIME_TO_DETECT: ["m.detection", "target.detect_within"],
    g.RECOVERY_TIME: ["m.rto_inject", "m.rto_clear", "target.recover_within"],
    g.RTO: ["target.recover_within"],
    g.RECOVERY_POINT: ["m.recovery_point", "m.rto_inject.def"],
    g.PROBE_REQUESTS: ["sc.canary", "src.canary"],
    g.LOAD_REQUESTS: ["src.load_other"],
    g.CLEAN_UP: ["sec.deviations", "dev.cleanup", "ev.cleanup", "cleanup.none"],
    g.RUN_ID: ["id.run"],
    g.EXACT: ["basis.exact"],
    g.READINESS_FAILING: ["m.detection.def", "sig.not_ready"],
    g.TEST_REPORT: ["report.title"],
    g.DRILL_PLAN: ["id.plan"],
    g.EVIDENCE_DIGEST: ["id.evidence_digest", "app.digest"],
    g.DEVIATION: ["sec.deviations"],
    g.FINDING: ["sec.findings"],
    g.CUSTOMER_IMPACT: ["res.impact", "m.impact_start"],
    g.STEADY_STATE: ["sc.steady"],
}


@pytest.mark.parametrize("term", list(GLOSSARY_IN_CATALOGUE), ids=lambda t: t.key)
def test_the_catalogue_says_each_glossary_term_where_it_belongs(term):
    for key in GLOSSARY_IN_CATALOGUE[term]:
        assert term.ja in MESSAGES["ja"][key], (key, MESSAGES["ja"][key])
        assert term.en.lower() in MESSAGES["en"][key].lower(), (key, MESSAGES["en"][key])


def test_a_measured_recovery_time_is_never_called_rto():
    for key in ("m.rto_inject", "m.rto_clear"):
        for lang in ("en", "ja"):
            assert "RTO" not in MESSAGES[lang][key], (lang, key)
    assert g.RECOVERY_TIME.ja in MESSAGES["ja"]["m.rto_inject"] and g.RTO.ja in MESSAGES["ja"]["target.recover_within"]


def forbidden(text: str, lang: str) -> list[str]:
    return [f"{t.key}: {m.group(0)!r}" for t in g.GLOSSARY for pattern in t.avoid(lang)
            for m in re.finditer(pattern, text)]


def test_no_message_uses_a_synonym_the_glossary_forbids():
    for lang in ("en", "ja"):
        for key, text in MESSAGES[lang].items():
            assert forbidden(text, lang) == [], (lang, key, text)


def test_japanese_messages_use_full_width_punctuation():
    for key, text in MESSAGES["ja"].items():
        assert ascii_punctuation_in_japanese(text) == [], (key, text)


AVOIDED = ["建玉", "負荷注文", "カナリア注文", "後始末", "レディネス", "誤差なし", "MTTD", "検知時間", "実行 ID",
           r"≤ 0(?![.\d])"]
"""What auditors.md tells a Japanese report to avoid (patterns), the trading stack's words among
them, and a count target of zero written as ``≤ 0``."""


@pytest.mark.parametrize("name", ["report.ja.md", "report.ja.html"])
def test_a_japanese_reader_meets_the_glossary_terms_and_no_synonym(reported, name):
    text = prose(reported, name)
    for term in ("復旧所要時間", "目標復旧時間（RTO）", "検知所要時間", "監視用テスト注文", "事後処理（原状回復）",
                 "実施 ID", "全件計数（厳密値）", "稼働準備チェック異常", "約定遅延", "資金・残高",
                 "障害試験結果報告書", "証跡ダイジェスト", "負荷試験の注文", "0 件"):
        assert term in text, term
    assert forbidden(text, "ja") == []
    assert [w for w in AVOIDED if re.search(w, text)] == []
    assert ascii_punctuation_in_japanese(text) == []


def test_the_english_reports_and_junit_say_time_to_detect_not_mttd(reported):
    for name in ("report.md", "report.html", "junit.xml"):
        text = (reported / name).read_text(encoding="utf-8")
        assert forbidden(text, "en") == [], name
    junit = (reported / "junit.xml").read_text(encoding="utf-8")
    assert "Time to detect: measured" in junit and "RTO (recovery time from injection): measured" in junit


def test_the_japanese_book_links_the_japanese_reports(tmp_path):
    plan_dir = tmp_path / "plan"
    runs = [write_run(plan_dir / "runs", RunSpec(run_id=f"r{i}", scenario_id=f"FT-0{i}",
                                                  scenario_texts=JAPANESE_TEXTS,
                                                  outage=Outage() if i == 1 else None)) for i in (1, 2)]
    for run in runs:
        write_reports(run, langs=("en", "ja"), plan_info=PLAN)
    files = write_book(plan_dir, runs, PLAN, langs=("en", "ja"))
    index_ja = (plan_dir / "index.ja.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', index_ja)
    assert links == ["runs/r1/report.ja.html", "runs/r2/report.ja.html"]
    for link in links:
        assert '<html lang="ja">' in (plan_dir / link).read_text(encoding="utf-8")
    assert re.findall(r'href="([^"]+)"', files.index_html.read_text(encoding="utf-8")) == \
        ["runs/r1/report.html", "runs/r2/report.html"]
    md_ja = (plan_dir / "index.ja.md").read_text(encoding="utf-8")
    assert "(runs/r1/report.ja.html)" in md_ja and "第4四半期 障害訓練" in md_ja
    assert "注文データベースが 10 秒間停止する" in md_ja
    assert english_sentences(prose_of_markdown(md_ja), {"trading", "drill-host"}) == []


def test_a_book_whose_first_language_is_japanese_links_report_html(tmp_path):
    run = write_run(tmp_path / "plan" / "runs", RunSpec(run_id="r1", scenario_texts=JAPANESE_TEXTS))
    write_reports(run, langs=("ja", "en"))
    write_book(tmp_path / "plan", [run], PLAN, langs=("ja", "en"))
    assert 'href="runs/r1/report.html"' in (tmp_path / "plan" / "index.html").read_text(encoding="utf-8")
    assert 'href="runs/r1/report.en.html"' in (tmp_path / "plan" / "index.en.html").read_text(encoding="utf-8")
