"""The report's glossary: each term of a failure-test report in English and Japanese, in one place.

The message catalogue (:mod:`faultlab.report.messages`) builds its labels and sentences
from these terms, so a term reads the same in the report, the drill book and junit.xml:
the measured value is the *recovery time* (復旧所要時間), the objective is the *RTO*
(目標復旧時間（RTO）), one detection is the *time to detect* (検知所要時間), never a mean.
``avoid`` lists the synonyms a reader must not meet (regular expressions, searched in the
prose of a report of that language, code and quoted journal text aside); the tests check
the catalogue and rendered reports against them.

A system's own nouns are not here: what its requests are called (``{requests}``), its
completion delay and its integrity checks come from its plugin's declaration
(:mod:`faultlab.plugin.declaration`), and the harness's terms take them as placeholders
(``監視用テスト{requests}``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Term",
    "GLOSSARY",
    "RUN",
    "RUN_ID",
    "FAILURE_TEST",
    "TEST_REPORT",
    "DRILL_PLAN",
    "TIME_TO_DETECT",
    "RECOVERY_TIME",
    "RTO",
    "RECOVERY_POINT",
    "FAULT_ACTIVE",
    "FAULT_CLEARED",
    "CUSTOMER_IMPACT",
    "STEADY_STATE",
    "PROBE_REQUESTS",
    "LOAD_REQUESTS",
    "READINESS_FAILING",
    "CLEAN_UP",
    "EXACT",
    "RESOLUTION",
    "DEVIATION",
    "FINDING",
    "EVIDENCE_DIGEST",
    "INTAKE_HALTED",
    "INTAKE_RESUMED",
    "term",
]


@dataclass(frozen=True)
class Term:
    """One term: its words in each language, what it means, and the synonyms to avoid.

    ``en`` is written as in running text (lower case unless it is an abbreviation);
    :attr:`En` is the same at the start of a label.
    """

    key: str
    en: str
    ja: str
    meaning: str
    avoid_en: tuple[str, ...] = ()
    avoid_ja: tuple[str, ...] = ()

    @property
    def En(self) -> str:  # noqa: N802 - the capitalised form, read next to `en`
        """The English term at the start of a label or sentence."""
        return self.en[:1].upper() + self.en[1:]

    def get(self, lang: str) -> str:
        """The term in ``lang`` (English for any language but Japanese)."""
        return self.ja if lang == "ja" else self.en

    def avoid(self, lang: str) -> tuple[str, ...]:
        """The patterns a report in ``lang`` must not contain for this term."""
        return self.avoid_ja if lang == "ja" else self.avoid_en


RUN = Term(
    "run", "run", "実施",
    "one run of a failure test, from bringing the system up to its clean-up",
    avoid_ja=("実行",),
)
RUN_ID = Term("run_id", "run ID", "実施 ID", "the identifier of one run; its directory's name")
FAILURE_TEST = Term("failure_test", "failure test", "障害試験", "one scenario: a fault, the load and the targets")
TEST_REPORT = Term(
    "test_report", "failure test report", "障害試験結果報告書", "the report of one run of a failure test",
    avoid_ja=("障害訓練報告書",),
)
DRILL_PLAN = Term("drill_plan", "drill plan", "訓練計画", "the failure tests of one drill, its people and approvals")
TIME_TO_DETECT = Term(
    "time_to_detect", "time to detect", "検知所要時間",
    "from the fault taking effect until the system's own monitoring first showed it: one measurement, not a mean",
    avoid_en=(r"\bMTTD\b", r"\bmean time to\b"),
    avoid_ja=(r"MTTD", r"検知時間", r"検知までの時間", r"平均検知"),
)
RECOVERY_TIME = Term(
    "recovery_time", "recovery time", "復旧所要時間",
    "the measured time from the fault (or its clear) until the recovery point",
    avoid_ja=(r"(?<!目標)復旧時間",),
)
RTO = Term(
    "rto", "RTO", "目標復旧時間（RTO）",
    "the recovery time objective: the longest recovery time the scenario allows, fixed in advance",
)
RECOVERY_POINT = Term(
    "recovery_point", "recovery point", "復旧時点",
    "the start of the first period after the impact that stays healthy for the hold time",
)
FAULT_ACTIVE = Term("fault_active", "fault took effect", "障害発生", "the journalled moment a fault took effect")
FAULT_CLEARED = Term("fault_cleared", "fault cleared", "障害解除", "the journalled moment the last fault was reverted")
CUSTOMER_IMPACT = Term("customer_impact", "customer impact", "顧客影響", "requests that failed or were slow")
STEADY_STATE = Term("steady_state", "steady state", "定常状態", "what a healthy window meets")
PROBE_REQUESTS = Term(
    "probe_requests", "probe {requests}", "監視用テスト{requests}",
    "the harness's own requests, sent at a fixed rate to measure the system (the scenario's `canary`)",
    avoid_ja=(r"カナリア",),
)
LOAD_REQUESTS = Term(
    "load_requests", "load-test requests", "負荷試験リクエスト",
    "the load generator's requests, of every kind",
    avoid_ja=(r"負荷生成",),
)
READINESS_FAILING = Term(
    "readiness_failing", "readiness check failing", "稼働準備チェック異常",
    "the system's readiness endpoint answering that it is not ready",
    avoid_ja=(r"レディネス",),
)
CLEAN_UP = Term(
    "clean_up", "clean-up", "事後処理（原状回復）",
    "reverting every fault and restoring the system's original state after the run",
    avoid_ja=(r"後始末",),
)
EXACT = Term(
    "exact", "exact (every one counted)", "全件計数（厳密値）",
    "a count over every record, with no sampling",
    avoid_ja=(r"誤差なし",),
)
RESOLUTION = Term("resolution", "resolution", "分解能", "the finest step a figure can be measured in")
DEVIATION = Term("deviation", "deviation", "計画との差異", "what did not go as the scenario planned")
FINDING = Term("finding", "finding", "指摘事項", "something to act on: a missed target or an observed problem")
EVIDENCE_DIGEST = Term(
    "evidence_digest", "evidence digest", "証跡ダイジェスト",
    "the SHA-256 of the evidence files' list (`sha256sum` of each, sorted by path) when the report was written",
)
INTAKE_HALTED = Term("intake_halted", "intake halted", "受付停止", "the system stopped accepting new requests")
INTAKE_RESUMED = Term("intake_resumed", "intake resumed", "受付再開", "the system accepts new requests again")

GLOSSARY: tuple[Term, ...] = (
    RUN, RUN_ID, FAILURE_TEST, TEST_REPORT, DRILL_PLAN, TIME_TO_DETECT, RECOVERY_TIME, RTO, RECOVERY_POINT,
    FAULT_ACTIVE, FAULT_CLEARED, CUSTOMER_IMPACT, STEADY_STATE, PROBE_REQUESTS, LOAD_REQUESTS, READINESS_FAILING,
    CLEAN_UP, EXACT, RESOLUTION, DEVIATION, FINDING, EVIDENCE_DIGEST, INTAKE_HALTED, INTAKE_RESUMED,
)
"""Every term, in the order a report meets them."""

_BY_KEY = {t.key: t for t in GLOSSARY}


def term(key: str) -> Term:
    """The term called ``key`` (``recovery_time``); KeyError names the known ones."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no glossary term {key!r}; known: {', '.join(_BY_KEY)}") from None
