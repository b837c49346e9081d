"""The report's message catalogue: every sentence and label, in English and Japanese.

Each entry is ``key: (english, japanese)``, so a language can never lack a key. The
Japanese is written as a Japanese engineer would write a failure-test report, not word for
word, with full-width punctuation (（）：、。). The terms come from the glossary
(:mod:`faultlab.report.glossary`), so each reads the same in every message.
"""

from __future__ import annotations

from typing import Any

from faultlab.plugin.declaration import Completion, Declaration
from faultlab.report import glossary as g
from faultlab.report import messages_programme as _programme

__all__ = ["LANGUAGES", "MESSAGES", "Catalogue"]

LANGUAGES = ("en", "ja")

_ENTRIES: dict[str, tuple[str, str]] = {
    # title, banners, overall result
    "report.title": (f"{g.TEST_REPORT.En}: {{scenario_id}} — {{scenario_title}}", f"{g.TEST_REPORT.ja}：{{scenario_id}} — {{scenario_title}}"),
    "banner.crashed": (
        "THIS RUN CRASHED. The journal has no end record: the harness stopped before the run finished. "
        "Every figure below comes from the part of the run that was recorded, and a target without evidence counts as missed.",
        "この実施は異常終了しました。ジャーナルに終了レコードがなく、ハーネスが実施の途中で停止しています。"
        "以下の数値は記録が残っている範囲だけから算出したもので、証跡のない目標は未達として扱います。",
    ),
    "banner.status": ("The run did not complete: it ended with status “{status}”. {reason}", "実施が正常に完了していません（終了状態：{status}）。{reason}"),
    "overall.passed": ("Result: PASSED — all {total} targets met.", "判定：合格。目標 {total} 件をすべて達成しました。"),
    "overall.inconclusive": (
        "Result: INCONCLUSIVE — nothing shows the system was in its steady state before the fault, so no target can be judged ({missed} of {total} missed).",
        "判定：判定不能。障害注入前にシステムが定常状態にあったことを確認できないため、目標を判定できません（目標 {total} 件中 {missed} 件が未達）。",
    ),
    "overall.findings": ("Findings: {high} high, {medium} medium, {low} low.", f"{g.FINDING.ja}：高 {{high}} 件、中 {{medium}} 件、低 {{low}} 件。"),
    "overall.failed": ("Result: FAILED — {missed} of {total} targets missed.", "判定：不合格。目標 {total} 件中 {missed} 件が未達です。"),
    "overall.incomplete": (
        "Result: FAILED — the run did not complete ({status}); {missed} of {total} targets missed.",
        "判定：不合格。実施が完了していません（{status}）。目標 {total} 件中 {missed} 件が未達です。",
    ),
    # section titles
    "sec.identification": ("Identification", "識別情報"),
    "sec.summary": ("Summary: objectives against results", "概要：目標と結果"),
    "sec.scope": ("Scope", "対象範囲"),
    "sec.scenario": ("Scenario and assumptions", "シナリオと前提条件"),
    "sec.targets": ("Targets fixed in advance", "事前に定めた目標"),
    "sec.participants": ("Participants and approvals", "参加者と承認"),
    "sec.baseline": ("Baseline (before the fault)", "ベースライン（障害注入前）"),
    "sec.timeline": ("Timeline of events", "事象の時系列"),
    "sec.results": ("Measured results", "測定結果"),
    "sec.deviations": (f"Deviations and {g.CLEAN_UP.en} evidence", f"{g.DEVIATION.ja}と{g.CLEAN_UP.ja}の記録"),
    "sec.findings": ("Findings", g.FINDING.ja),
    "sec.appendices": ("Appendices", "付録"),
    # identification
    "id.run": (g.RUN_ID.En, g.RUN_ID.ja),
    "id.plan": (g.DRILL_PLAN.En, g.DRILL_PLAN.ja),
    "id.scenario": ("Scenario", "シナリオ"),
    "id.scenario_file": ("Scenario file", "シナリオファイル"),
    "id.scenario_hash": ("Scenario SHA-256", "シナリオの SHA-256"),
    "id.stack": ("Stack", "対象スタック"),
    "id.stack_hash": ("Stack file SHA-256", "スタック定義の SHA-256"),
    "id.window": ("Time window (UTC)", "実施時間帯（UTC）"),
    "id.duration": ("Planned duration", "予定実施時間"),
    "id.status": ("Run status", "実施状態"),
    "id.environment": ("Environment", "実施環境"),
    "id.classification": ("Classification", "文書区分"),
    "id.system_version": ("System version", "システムのバージョン"),
    "id.runbook": ("Runbook version", "復旧手順書の版"),
    "id.host": ("Host", "実施ホスト"),
    "id.faultlab": ("faultlab version (run / report)", "faultlab のバージョン（実施時／報告書作成時）"),
    "id.schema": ("Journal schema", "ジャーナル形式"),
    "id.language": ("Report language", "報告書の言語"),
    "id.generated": ("Report generated", "報告書の作成日時"),
    "id.evidence_digest": (f"{g.EVIDENCE_DIGEST.En} (SHA-256)", f"{g.EVIDENCE_DIGEST.ja}（SHA-256）"),
    "id.verbatim": (
        "Text set in `code type` is quoted from the journal as it was recorded (the harness and the system write it in English).",
        "`等幅` で示した文字列は、ジャーナルの記録をそのまま引用したものです（ハーネスと対象システムが英語で記録しています）。",
    ),
    "lang.name": ("English", "日本語"),
    # run status
    "status.completed": ("completed", "正常終了"),
    "status.aborted": ("aborted", "中止"),
    "status.interrupted": ("interrupted", "中断"),
    "status.failed": ("failed", "失敗"),
    "status.crashed": ("crashed, no end record", "異常終了（終了レコードなし）"),
    "status.unknown": ("unknown", "不明"),
    # tables: common columns
    "col.objective": ("Objective", "目標項目"),
    "col.target": ("Target", "目標値"),
    "col.measured": ("Measured", "測定値"),
    "col.resolution": ("Resolution", "分解能"),
    "col.verdict": ("Verdict", "判定"),
    "col.evidence": ("Evidence", "根拠"),
    "col.source": ("Set by", "設定元"),
    "col.fault": ("Fault", "障害"),
    "col.kind": ("Kind", "種類"),
    "col.fault_target": ("Injected into", "注入先"),
    "col.params": ("Parameters", "パラメータ"),
    "col.planned": ("Planned at", "予定時刻"),
    "col.active": ("Took effect", "発生時刻"),
    "col.cleared": ("Reverted", "解除時刻"),
    "col.slip": ("Slip", "予定とのずれ"),
    "col.revert_plan": ("Revert plan", "解除手順"),
    "col.name": ("Name", "氏名"),
    "col.role": ("Role", "役割"),
    "col.attended": ("Took part", "参加"),
    "col.decision": ("Decision", "判断"),
    "col.date": ("Date", "日付"),
    "col.t": ("t (s)", "経過時間（秒）"),
    "col.wall": ("Time (UTC)", "時刻（UTC）"),
    "col.event": ("Event", "事象"),
    "col.detail": ("Detail", "詳細"),
    "col.measure": ("Measure", "指標"),
    "col.value": ("Value", "値"),
    "col.definition": ("How it is measured", "算出方法"),
    "col.check": ("Check", "チェック項目"),
    "col.count": ("Count", "件数"),
    "col.ids": ("{ids}", "{ids}"),
    "col.source_req": ("Requests", "リクエスト種別"),
    "col.sent": ("Sent", "送信"),
    "col.ok": ("Succeeded", "成功"),
    "col.rejected": ("Rejected (error answer)", "拒否（エラー応答）"),
    "col.failed": ("Failed (no answer)", "失敗（応答なし）"),
    "col.delayed": ("Delayed (over {limit})", "遅延（{limit}超）"),
    "col.late": ("Completed late (over {limit})", "完了遅延（{limit}超）"),
    "col.period": ("Period", "期間"),
    "col.p50": ("p50", "p50"),
    "col.p99": ("p99", "p99"),
    "col.max": ("max", "最大"),
    "col.job": ("Job", "ジョブ"),
    "col.started": ("Started", "開始"),
    "col.finished": ("Finished", "終了"),
    "col.duration": ("Duration", "所要時間"),
    "col.window": ("Window", "許容時間"),
    "col.within": ("Within window", "許容時間内"),
    "col.deadline": ("Deadline", "期限"),
    "col.margin": ("Margin before the deadline", "期限までの余裕"),
    "col.what": ("What", "内容"),
    "col.result": ("Result", "結果"),
    "col.id": ("ID", "ID"),
    "col.severity": ("Severity", "重要度"),
    "col.finding": ("Finding", "内容"),
    "col.owner": ("Owner", "担当"),
    "col.remediation": ("Remediation", "是正措置"),
    "col.file": ("File", "ファイル"),
    "col.size": ("Bytes", "バイト数"),
    "col.sha": ("SHA-256", "SHA-256"),
    "col.tool": ("Tool", "ツール"),
    "col.version": ("Version", "バージョン"),
    "yes": ("yes", "はい"),
    "no": ("no", "いいえ"),
    "none": ("—", "—"),
    # verdict outcomes and measure statuses
    "outcome.met": ("met", "達成"),
    "outcome.missed": ("MISSED", "未達"),
    "outcome.not_assessed": ("NOT ASSESSED", "評価不能"),
    "mstatus.not_detected": ("not detected", "検知されず"),
    "mstatus.not_recovered": ("not recovered within the run", f"{g.RUN.ja}時間内に復旧せず"),
    "mstatus.no_impact": (f"no {g.CUSTOMER_IMPACT.en}", f"{g.CUSTOMER_IMPACT.ja}なし"),
    "mstatus.not_measured": ("not measured", "測定できず"),
    "mstatus.not_checked": ("not checked (the plugin did not run this check)", "未確認（プラグインがこのチェックを行っていません）"),
    "mstatus.recovered_before_clear": ("recovered before the fault cleared (no time needed after it)",
                                 "障害解除より前に復旧（解除後の所要時間なし）"),
    "basis.window_step": ("window step", "ウィンドウの刻み"),
    "basis.monitor_interval": ("monitor interval", "監視の間隔"),
    "basis.probe_interval": (f"interval of the {g.PROBE_REQUESTS.en}", f"{g.PROBE_REQUESTS.ja}の送信間隔"),
    "basis.probe_and_answer": (f"interval of the {g.PROBE_REQUESTS.en} + the time that answer took",
                               f"{g.PROBE_REQUESTS.ja}の送信間隔＋その応答にかかった時間"),
    "basis.journal": ("journal timestamp", "ジャーナルの時刻"),
    "basis.alert_pipeline": ("scrape interval and timeout + evaluation interval + Alertmanager's group wait", "スクレイプ間隔とタイムアウト＋評価間隔＋Alertmanager のグループ待ち時間"),
    "basis.exact": (g.EXACT.en, g.EXACT.ja),
    "paren": ("{a} ({b})", "{a}（{b}）"),
    "source.preset": ("scenario (fixed in advance)", "シナリオで事前設定"),
    "source.builtin": ("built-in data-integrity rule", "データ整合性の標準ルール"),
    # target names
    "target.detect_within": (g.TIME_TO_DETECT.En, g.TIME_TO_DETECT.ja),
    "target.recover_within": (f"{g.RTO.en} ({g.RECOVERY_TIME.en} from injection)", f"{g.RTO.ja}：障害注入からの{g.RECOVERY_TIME.ja}"),
    "target.recover_after_clear_within": (f"{g.RTO.en} after the fault cleared ({g.RECOVERY_TIME.en} from the clear)", "目標復旧時間（障害解除から）：障害解除からの" + g.RECOVERY_TIME.ja),
    "target.impact_within": (f"Longest {g.CUSTOMER_IMPACT.en}", f"{g.CUSTOMER_IMPACT.ja}の継続時間（上限）"),
    "target.backlog_drain_within": ("Backlog drain time", "滞留の解消時間"),
    "target.job_margin_min": ("Least margin of a job before its deadline", "ジョブの期限までの最小余裕時間"),
    "target.error_budget": ("Error budget consumed", "エラーバジェット消費率"),
    "target.completion_p99": ("{Completion} (p99)", "{Completion}（p99）"),
    "target.unanswered_requests": ("{Requests} left without an answer (hung)", "応答のないまま終わった{Requests}（ハング）"),
    "target.rejection_p99_within": ("Time to refuse {requests} (p99 of the refusals)", "{requests}を拒否するまでの時間（拒否応答の p99）"),
    "target.shed_requests_min": ("{Requests} shed for overload (admission control)", "過負荷により受付制限された{Requests}（流入制御）"),
    "target.latency_breach_within": ("Time the latency objective was broken", "レイテンシ目標を超過した時間"),
    "target.worst_p99_within": ("Worst p99 latency after the fault", "障害発生後の最悪 p99 レイテンシ"),
    "target.restarts_max": ("Restarts of any one service", "サービスごとの再起動回数（最大）"),
    "target.metric.max": ("{metric}: highest value", "{metric}：最大値"),
    "target.metric.min": ("{metric}: lowest value", "{metric}：最小値"),
    "target.metric.after_max": ("{metric}: highest value after the fault cleared", "{metric}：障害解除後の最大値"),
    "target.metric.after_min": ("{metric}: lowest value after the fault cleared", "{metric}：障害解除後の最小値"),
    "target.metric.increase_min": ("{metric}: increase over the run (at least)", "{metric}：実施中の増加量（下限）"),
    "target.metric.increase_max": ("{metric}: increase over the run (at most)", "{metric}：実施中の増加量（上限）"),
    "target.metric.increase_during_min": ("{metric}: increase while the fault acted", "{metric}：障害中の増加量"),
    "target.metric.increase_after_max": ("{metric}: increase after the fault cleared", "{metric}：障害解除後の増加量"),
    "summary.top_findings": ("Top findings", f"主な{g.FINDING.ja}"),
    "summary.finding": ("{id} ({severity}): {text}", "{id}（{severity}）：{text}"),
    "summary.no_findings": ("No findings.", f"{g.FINDING.ja}はありません。"),
    # scope
    "scope.system": ("System under drill", "訓練対象システム"),
    "scope.services": ("Services observed", "ログを取得したサービス"),
    "scope.fault_targets": ("Where faults were injected", "障害の注入先"),
    "scope.functions": ("Functions in scope", "対象とする業務機能"),
    "scope.exclusions": ("Exclusions", "対象外"),
    "scope.rationale": ("Rationale", "選定理由"),
    "scope.not_stated": ("not stated in the drill plan", "訓練計画に記載なし"),
    # scenario
    "sc.title": ("Scenario", "シナリオ"),
    "sc.faults": ("Faults injected", "注入した障害"),
    "sc.steady": (f"{g.STEADY_STATE.En} (what a healthy window meets)", f"{g.STEADY_STATE.ja}（正常なウィンドウが満たす条件）"),
    "sc.steady_value": ("success rate ≥ {rate}, p99 latency ≤ {p99}", "成功率 {rate} 以上、p99 レイテンシ {p99} 以下"),
    "sc.steady_completion": (", p99 {completion} ≤ {max}", "、{completion}の p99 {max} 以下"),
    "sc.window": ("Window / step / hold", "ウィンドウ幅／刻み／安定確認時間"),
    "sc.load": ("Load", "負荷"),
    "sc.canary": (g.PROBE_REQUESTS.En, g.PROBE_REQUESTS.ja),
    "sc.assumptions": ("Assumptions challenged", "検証する前提条件"),
    "sc.heading": ("{id}: {title}", "{id}：{title}"),
    "sc.description": ("Narrative", "シナリオの概要"),
    "sc.no_faults": ("No fault was journalled.", "障害の記録がありません。"),
    # targets section
    "tg.intro": (
        "These targets were fixed in the scenario before the run. The built-in data-integrity rules apply to every run that checked integrity.",
        "以下の目標は実施前にシナリオで定めたものです。データ整合性の標準ルールは、整合性チェックを行ったすべての実施に適用します。",
    ),
    "tg.none": ("The scenario fixed no targets.", "シナリオに目標が設定されていません。"),
    # participants
    "part.none": (
        "No drill plan was given, so participants and approvals are not recorded in this report.",
        "訓練計画が指定されていないため、参加者と承認は本報告書に記録されていません。",
    ),
    "part.approvals": ("Approvals", "承認"),
    "part.no_approvals": ("No approvals recorded in the drill plan.", "訓練計画に承認の記録がありません。"),
    # baseline
    "bl.period": ("Period", "期間"),
    "bl.samples": ("Requests", "リクエスト数"),
    "bl.success": ("Success rate", "成功率"),
    "bl.p50": ("Latency p50", "レイテンシ p50"),
    "bl.p99": ("Latency p99", "レイテンシ p99"),
    "bl.max": ("Latency max", "レイテンシ最大"),
    "bl.throughput": ("Throughput (successful requests/s)", "スループット（成功リクエスト／秒）"),
    "bl.healthy": ("Healthy windows", "正常なウィンドウ"),
    "bl.steady_met": ("Steady state held throughout", "定常状態を維持"),
    "bl.resolution": ("exact over the recorded requests; windows of {window} sliding by {step}", f"記録された全リクエストの{g.EXACT.ja}。ウィンドウは幅 {{window}}、刻み {{step}}"),
    "bl.none": ("No requests were recorded before the fault.", "障害注入前のリクエストが記録されていません。"),
    # timeline
    "ev.phase.begin": ("phase begins: {detail}", "フェーズ開始：{detail}"),
    "ev.phase.end": ("phase ends: {detail}", "フェーズ終了：{detail}"),
    "ev.fault.planned": ("fault planned, revert plan journalled", "障害注入を予定（解除手順を記録済み）"),
    "ev.fault.injected": ("fault injected", "障害を注入"),
    "ev.fault.active": (g.FAULT_ACTIVE.en, g.FAULT_ACTIVE.ja),
    "ev.fault.reverted": ("fault reverted", g.FAULT_CLEARED.ja),
    "ev.fault.revert_failed": ("fault revert FAILED", "障害の解除に失敗"),
    "ev.job.started": ("job started", "ジョブ開始"),
    "ev.job.finished": ("job finished", "ジョブ終了"),
    "ev.job.failed": ("job FAILED", "ジョブ失敗"),
    "ev.decision": ("decision", "判断"),
    "ev.note.info": ("note", "記録"),
    "ev.note.warning": ("warning", "警告"),
    "ev.cleanup": (g.CLEAN_UP.en, g.CLEAN_UP.ja),
    "ev.integrity": ("data-integrity check", "データ整合性チェック"),
    "ev.integrity.detail": ("{acknowledged} acknowledged, {violations} violations", "受付 {acknowledged} 件、違反 {violations} 件"),
    "ev.job_result": ("job result", "ジョブ結果"),
    "ev.end": ("run ended", "実施終了"),
    "ev.impact_start": (f"{g.CUSTOMER_IMPACT.en} begins", f"{g.CUSTOMER_IMPACT.ja}が発生"),
    "ev.detected": ("monitoring shows the problem (detection)", "監視が異常を検知"),
    "ev.recovered": (f"{g.RECOVERY_POINT.en}: healthy from here for {{hold}}", f"{g.RECOVERY_POINT.ja}（以後 {{hold}}にわたり正常）"),
    "ev.backlog_drained": ("backlog drained", "滞留を解消"),
    "sig.not_ready": (g.READINESS_FAILING.en, g.READINESS_FAILING.ja),
    "sig.alert": ("alert {names}", "アラート {names}"),
    "ev.alert_raised": ("monitoring alert raised", "監視アラート発報"),
    "ev.alert_cleared": ("monitoring alert cleared", "監視アラート解消"),
    "ev.intake_halted": (f"{{Request}} {g.INTAKE_HALTED.en} (the monitoring's alert)", f"{{Request}}の{g.INTAKE_HALTED.ja}（監視アラート）"),
    "ev.intake_resumed": (f"{{Request}} {g.INTAKE_RESUMED.en}", f"{{Request}}の{g.INTAKE_RESUMED.ja}"),
    "ev.derived": ("(computed)", "（算出）"),
    "ev.other": ("{kind}", "{kind}"),
    "phase.stack_up": ("stack start", "スタック起動"),
    "phase.baseline": ("baseline", "ベースライン計測"),
    "phase.load_start": ("load starting", "負荷投入の準備"),
    "phase.load": ("load", "負荷投入"),
    "phase.faults": ("faults", "障害注入"),
    "phase.settle": ("settle", "安定待ち"),
    "phase.integrity": ("integrity check", "整合性チェック"),
    "phase.teardown": ("teardown", "停止処理"),
    "tl.none": ("No events were journalled.", "記録された事象がありません。"),
    # results
    "res.intro": (
        "Requests are grouped into {window} windows sliding by {step}; a window is healthy when it meets the steady state. "
        "Times are seconds since the run's origin. Each figure states its resolution.",
        "リクエストを幅 {window}、刻み {step}のスライディングウィンドウで集計し、定常状態を満たすウィンドウを正常とみなします。"
        f"時刻は{g.RUN.ja}開始からの経過秒です。各数値には{g.RESOLUTION.ja}を併記しています。",
    ),
    "res.times": ("Detection and recovery", "検知と復旧"),
    "m.t_inject": (f"{g.FAULT_ACTIVE.En} (t_inject)", f"{g.FAULT_ACTIVE.ja}時刻（t_inject）"),
    "m.t_inject.def": ("journalled time the first fault took effect", "最初の障害が発生したとジャーナルに記録された時刻"),
    "m.t_clear": (g.FAULT_CLEARED.En, f"{g.FAULT_CLEARED.ja}時刻"),
    "m.t_clear.def": ("journalled time the last fault was reverted", "最後の障害を解除したとジャーナルに記録された時刻"),
    "m.impact_start": (f"{g.CUSTOMER_IMPACT.En} began", f"{g.CUSTOMER_IMPACT.ja}の開始"),
    "m.impact_start.def": (
        "the first request sent after t_inject that failed, was slow or was completed late, in an unhealthy window",
        "t_inject 以降に送信され、失敗・応答遅延・完了遅延となった最初のリクエスト（定常状態を外れたウィンドウ内）",
    ),
    "m.detection": (g.TIME_TO_DETECT.En, g.TIME_TO_DETECT.ja),
    "m.detection.def": (
        f"t_inject until the stack's own monitoring first showed the problem ({g.READINESS_FAILING.en}, or a new alert)",
        f"t_inject から、スタック自身の監視が初めて異常を示すまで（{g.READINESS_FAILING.ja}、または新たなアラート）",
    ),
    "m.recovery_point": (g.RECOVERY_POINT.En, g.RECOVERY_POINT.ja),
    "m.recovery_point.def": (
        "start of the first period after the impact that stays healthy for {hold}",
        "影響発生後、{hold}続けて正常が保たれた最初の期間の開始時刻",
    ),
    "m.rto_inject": (f"{g.RECOVERY_TIME.En} from injection", f"{g.RECOVERY_TIME.ja}（障害注入から）"),
    "m.rto_inject.def": (f"{g.RECOVERY_POINT.en} − t_inject", f"{g.RECOVERY_POINT.ja} − t_inject"),
    "m.rto_clear": (f"{g.RECOVERY_TIME.En} after the fault cleared", f"{g.RECOVERY_TIME.ja}（障害解除から）"),
    "m.rto_clear.def": (f"{g.RECOVERY_POINT.en} − fault cleared", f"{g.RECOVERY_POINT.ja} − {g.FAULT_CLEARED.ja}時刻"),
    "m.impact_duration": (f"{g.CUSTOMER_IMPACT.En} lasted", f"{g.CUSTOMER_IMPACT.ja}の継続時間"),
    "m.impact_duration.def": (f"{g.RECOVERY_POINT.en} − impact start", f"{g.RECOVERY_POINT.ja} − {g.CUSTOMER_IMPACT.ja}の開始"),
    "m.backlog": ("Backlog drain time", "滞留の解消時間"),
    "m.backlog.def": (
        "fault cleared until the backlog it left was drained: nothing waiting from before the clear "
        "(where the stack tells the oldest wait), else the monitored number back at its pre-fault level",
        "障害解除から、障害が残した滞留が解消するまで：解除前から待っているものがなくなる"
        "（スタックが最古の待ち時間を示す場合）か、さもなければ監視している滞留件数が障害前の水準に戻るまで",
    ),
    "m.data_loss": ("Data lost (recovery point, RPO)", "データ消失の範囲（復旧時点目標、RPO）"),
    "m.data_loss.def": (
        "from the last acknowledgement still durable before the first one lost to the last one lost (0: nothing acknowledged was lost)",
        "消失した受付のうち最初のものより前で最後に残っている受付から、最後に消失した受付まで（0：受付済みのデータの消失なし）",
    ),
    "res.alerts": ("Monitoring alerts and {request} intake", "監視アラートと{request}受付"),
    "alerts.none": ("The monitoring raised no alert during the run.", "実施中に監視アラートは発報されませんでした。"),
    "alerts.still": ("still raised at the end", "終了時も継続"),
    "col.alert": ("Alert", "アラート"),
    "col.raised": ("Raised", "発報"),
    "col.cleared_alert": ("Cleared", "解消"),
    "alerts.intake": ("{Request} intake halted from t = {start} to {end} ({length}).", "{Request}受付の停止：t = {start} から {end} まで（{length}）。"),
    # detection by the run's real monitoring (a stack with `monitoring:`)
    "res.alerting": ("Detection by the monitoring's alerts (Prometheus and Alertmanager)", "監視アラートによる検知（Prometheus と Alertmanager）"),
    "alerting.intro": (
        "Prometheus scraped the services every {scrape} (each scrape allowed {timeout}) and evaluated the alert rules of {rules} every {evaluation} "
        "(alerts defined: {alerts}); Alertmanager sent each new alert to faultlab after {wait}, and each resolution within {interval}. "
        "An alert reaches faultlab up to {resolution} after what it watches changed: that is the resolution of the alert times below. "
        f"The {g.TIME_TO_DETECT.en} is counted to the alert's arrival, when the people on call would be told.",
        "Prometheus は各サービスを {scrape} ごとに（1 回あたり最大 {timeout}）スクレイプし、{rules} のアラートルールを {evaluation} ごとに評価しました"
        "（定義済みアラート：{alerts}）。Alertmanager は新しいアラートを {wait} 待って faultlab へ送り、解消は {interval} 以内に送りました。"
        "アラートは監視対象の変化から最大 {resolution} 遅れて faultlab に届きます。これが以下のアラート時刻の分解能です。"
        f"{g.TIME_TO_DETECT.ja}は、当番の担当者に通知が届く時点であるアラートの到着までを数えています。",
    ),
    "alerting.by_alert": ("Detection by the first alert (judged against the target)", "最初のアラートによる検知（目標の判定に使用）"),
    "alerting.by_alert_named": ("Detection by the alert {alert} (detect_by; judged against the target)", "アラート {alert} による検知（detect_by、目標の判定に使用）"),
    "alerting.by_readiness": ("Detection by polling the readiness endpoint (for comparison)", "稼働準備チェック（readiness エンドポイント）のポーリングによる検知（比較用）"),
    "alerting.value": ("{value}, by {signal}", "{value}（{signal}）"),
    "alerting.alert_signal": ("the alert {alert}", "アラート {alert}"),
    "alerting.later": ("Alert detection minus readiness detection", "アラートによる検知と稼働準備チェックによる検知の差"),
    "alerting.by_fault": ("Alerts by fault", "障害ごとのアラート"),
    "alerting.none": ("No alert fired during the run.", f"{g.RUN.ja}中にアラートは発報されませんでした。"),
    "alerting.never": ("never fired", "発報されず"),
    "alerting.still": ("still firing at the end", "終了時も発報中"),
    "alerting.no_alert_row": ("(no alert)", "（アラートなし）"),
    "alerting.before_any": ("before any fault", "障害発生前"),
    "alerting.only": (
        "Fault {fault} ({kind} → {target}) was detected only by the alert {alert}: no other alert fired, and the readiness endpoint stayed ready while it lasted.",
        "障害 {fault}（{kind} → {target}）を検知したのはアラート {alert} だけでした。ほかのアラートは発報されず、障害の間、稼働準備チェックは正常を返し続けました。",
    ),
    "alerting.no_alert": ("No alert fired for fault {fault} ({kind} → {target}).", "障害 {fault}（{kind} → {target}）に対してアラートは発報されませんでした。"),
    "alerting.expected_missing": (
        "The expected alert {alert} never fired for fault {fault} ({kind} → {target}).",
        "想定していたアラート {alert} は、障害 {fault}（{kind} → {target}）に対して発報されませんでした。",
    ),
    "alerting.before": ("Alerts that fired before any fault took effect (not detection): {alerts}.", "障害の発生前に発報されたアラート（検知には数えません）：{alerts}。"),
    "alerting.promql": ("PromQL conditions evaluated against the run's Prometheus", f"{g.RUN.ja}中の Prometheus で評価した PromQL 条件"),
    "alerting.role.steady_state": ("steady state", "定常状態"),
    "alerting.role.abort": ("abort", "中止条件"),
    "col.alert_active": ("Active in Prometheus (t)", "Prometheus での発報（t）"),
    "col.received": ("Received by faultlab (t)", "faultlab での受信（t）"),
    "col.time_to_detect": (g.TIME_TO_DETECT.En, g.TIME_TO_DETECT.ja),
    "col.resolved_received": ("Resolution received (t)", "解消の受信（t）"),
    "col.condition": ("Condition", "条件"),
    "col.used_for": ("Used for", "用途"),
    "col.query": ("PromQL", "PromQL"),
    "col.bounds": ("Bounds", "しきい値"),
    "col.evaluations": ("Evaluations", "評価回数"),
    "col.held": ("Held", "成立"),
    "col.breaches": ("Times not held (first at t)", "不成立の回数（最初の t）"),
    "col.errors": ("Errors", "エラー"),
    "m.detection_alert": (f"{g.TIME_TO_DETECT.En}, by alert", f"{g.TIME_TO_DETECT.ja}（アラート）"),
    "m.detection_alert.def": (
        "t_inject until the first alert that became active after it reached faultlab through Alertmanager",
        "t_inject から、その後に発報したアラートが Alertmanager 経由で最初に faultlab に届くまで",
    ),
    "m.detection_readiness": (f"{g.TIME_TO_DETECT.En}, by the readiness endpoint", f"{g.TIME_TO_DETECT.ja}（稼働準備チェック）"),
    "m.detection_readiness.def": (
        "t_inject until the readiness endpoint first showed the problem (not ready, or a new alert in its body); for comparison",
        f"t_inject から、稼働準備チェック（readiness エンドポイント）が初めて異常を示すまで（{g.READINESS_FAILING.ja}または応答内の新たなアラート）。比較用",
    ),
    "ev.alert.firing": ("alert fired (received from Alertmanager)", "アラート発報（Alertmanager から受信）"),
    "ev.alert.resolved": ("alert resolved (received from Alertmanager)", "アラート解消（Alertmanager から受信）"),
    "ev.detected_by_readiness": ("readiness endpoint shows the problem", "稼働準備チェックが異常を示す"),
    "int.outcomes": ("Where the acknowledged {requests} ended up", "受付済みの{requests}の最終状態"),
    "int.attempted": (
        "{n} {requests} got no answer in time (the client could not know whether they were accepted); in the end state:",
        "{n} 件の{requests}は時間内に応答がなく、受付されたかどうかをクライアントは知り得ませんでした。最終状態での内訳：",
    ),
    "int.state": (
        "The check ran on the system's end state exported into the package ({state}/), so it can be re-performed offline.",
        "このチェックはパッケージに保存したシステムの最終状態（{state}/）に対して行っており、オフラインで再実施できます。",
    ),
    "int.live": ("The check ran on the live system; its end state is not in the package.", "このチェックは稼働中のシステムに対して行っており、最終状態はパッケージに含まれていません。"),
    "int.violations": ("Violations, one by one", "違反の一覧"),
    "int.violation": ("{check}: {id} (sent at t = {sent}, answered at t = {answered}, {wall}) — {detail}", "{check}：{id}（送信 t = {sent}、応答 t = {answered}、{wall}）— {detail}"),
    "int.violation_untimed": ("{check}: {id} — {detail}", "{check}：{id} — {detail}"),
    "col.outcome": ("Outcome", "状態"),
    "int.absent": ("absent (not in the end state)", "存在しない（最終状態にない）"),
    "m.error_budget": ("Error budget consumed", "エラーバジェット消費率"),
    "m.error_budget.def": (
        "over the whole run, failed requests ÷ ((1 − minimum success rate) × all requests): {failures} of {requests} failed",
        f"{g.RUN.ja}全体の失敗リクエスト数 ÷（（1 − 最低成功率）× 全リクエスト数）。{{requests}} 件中 {{failures}} 件が失敗",
    ),
    "res.integrity": ("Data integrity", "データ整合性"),
    "int.acknowledged": ("{Requests} acknowledged by the API: {n}", "API が受付を返した{Requests}：{n} 件"),
    "int.none": ("No integrity record: the check did not run.", "整合性チェックの記録がありません（チェック未実施）。"),
    "res.impact": (g.CUSTOMER_IMPACT.En, g.CUSTOMER_IMPACT.ja),
    "imp.whole": ("Whole run", f"{g.RUN.ja}全体"),
    "imp.during": (f"During the impact (impact start to {g.RECOVERY_POINT.en})", f"影響期間中（影響開始から{g.RECOVERY_POINT.ja}まで）"),
    "imp.none": (f"There was no {g.CUSTOMER_IMPACT.en}.", f"{g.CUSTOMER_IMPACT.ja}はありませんでした。"),
    "src.canary": (g.PROBE_REQUESTS.en, g.PROBE_REQUESTS.ja),
    "src.load": ("load-test {requests}", "負荷試験の{requests}"),
    "src.load_other": (f"other {g.LOAD_REQUESTS.en} (reads, cancels…)", f"その他の{g.LOAD_REQUESTS.ja}（照会・取消など）"),
    "src.total": ("total", "合計"),
    "res.exec": ("{Completion}", "{Completion}"),
    "period.before": ("before the fault", "障害発生前"),
    "period.during": ("while the fault was active", "障害発生中"),
    "period.after": ("after the fault cleared", "障害解除後"),
    "exec.none": ("No {completion} was recorded.", "{completion}の記録がありません。"),
    "res.jobs": ("Jobs: window and margin before the deadline", "ジョブの処理時間と期限までの余裕"),
    "jobs.none": ("No job ran in this drill.", f"この{g.RUN.ja}ではジョブを起動していません。"),
    "jobs.deadline": ("{deadline} at t = {t}", "{deadline}（t = {t}）"),
    "jobs.no_name": ("its deadline", "期限"),
    "res.charts": ("Charts", "グラフ"),
    "chart.success_rate": ("Success rate", "成功率"),
    "chart.p99": ("p99 latency (s)", "p99 レイテンシ（秒）"),
    "chart.throughput": ("Throughput (successful requests/s)", "スループット（成功リクエスト／秒）"),
    "chart.exec": ("{Completion} p99 (s)", "{Completion} p99（秒）"),
    "chart.legend": (
        "Shaded: fault active. Red line: fault took effect; grey dotted: impact began; orange dashed: detection; "
        "green dashed: recovery point; blue dotted: steady-state bound. Each point is the {window} window of the "
        "requests sent from that moment, held until the next one, as the tables place windows: the curve turns healthy "
        "on the recovery line (the line stands where the first of those requests was answered, within the recovery "
        "point's resolution), and falls up to {window} before the first failed request.",
        "網掛け：障害発生中。赤線：障害発生、灰色の点線：顧客影響の開始、橙の破線：検知、緑の破線：復旧時点、"
        "青の点線：定常状態の閾値。各点はその時刻から {window}の間に送信したリクエストのウィンドウの値で、表と同じく次の点まで"
        "保持しています。このため曲線は復旧時点の線で正常に戻り（線はそのリクエストの最初の応答の時刻で、復旧時点の分解能の範囲内）、"
        "最初の失敗より最大 {window}早く下がります。",
    ),
    "chart.legend_jobs": (
        "Purple band along the top: a job's run; purple dotted: the end of its window; purple dash-dot: its deadline, named.",
        "上端の紫の帯：ジョブの処理期間、紫の点線：許容時間の終わり、紫の一点鎖線：期限（名称を併記）。",
    ),
    "chart.fast_errors": (
        "Hatched: windows whose failed requests were answered fast (error answers). Their p99 latency is low, "
        "but they were not healthy: read it with the success rate.",
        "斜線：失敗したリクエストにエラー応答がすぐに返ったウィンドウです。p99 レイテンシは低く見えますが、"
        "正常ではありません（成功率とあわせて読んでください）。",
    ),
    "chart.md_note": (
        "Charts are in report.html; the data behind them are in timeseries.csv.",
        "グラフは report.html に、その元データは timeseries.csv にあります。",
    ),
    "chart.no_exec": ("No {completion} was recorded, so there is no chart of it.", "{completion}の記録がないため、グラフはありません。"),
    # deviations
    "dev.crashed": ("The harness stopped without writing an end record (crashed).", "ハーネスが終了レコードを書かずに停止しました（異常終了）。"),
    "dev.run_status": ("The run ended with status “{status}”. {reason}", f"{g.RUN.ja}が状態「{{status}}」で終了しました。{{reason}}"),
    "dev.fault_never_active": ("Fault {fault} ({kind}) never took effect.", "障害 {fault}（{kind}）が発生しませんでした。"),
    "dev.slip": ("Fault {fault} ({kind}) took effect {slip_s} away from its planned time.", "障害 {fault}（{kind}）の発生が予定から {slip_s}ずれました。"),
    "dev.revert_failed": ("Reverting fault {fault} ({kind}) FAILED.", "障害 {fault}（{kind}）の解除に失敗しました。"),
    "dev.not_reverted": ("No revert was journalled for fault {fault} ({kind}).", "障害 {fault}（{kind}）の解除記録がありません。"),
    "dev.cleanup_failed": (f"A {g.CLEAN_UP.en} step failed: {{what}}", f"{g.CLEAN_UP.ja}の手順が失敗しました：{{what}}"),
    "dev.job_failed": ("Job {job} failed.", "ジョブ {job} が失敗しました。"),
    "dev.warning": ("Warning journalled: {message}", "警告の記録：{message}"),
    "dev.abort": ("The run was aborted: {why}", f"{g.RUN.ja}を中止しました：{{why}}"),
    "dev.integrity_missing": ("No data-integrity check was journalled.", "データ整合性チェックの記録がありません。"),
    "dev.journal_problem": ("Journal: {problem}", "ジャーナル：{problem}"),
    "dev.none": ("No deviations from the plan were recorded.", f"{g.DEVIATION.ja}は記録されていません。"),
    "dev.reverts": ("Fault reverts", "障害の解除記録"),
    "dev.cleanup": (f"{g.CLEAN_UP.En} evidence", f"{g.CLEAN_UP.ja}の記録"),
    "revert.ok": ("reverted", "解除済み"),
    "revert.failed": ("FAILED", "失敗"),
    "revert.missing": ("no revert journalled", "解除記録なし"),
    "cleanup.none": (f"No {g.CLEAN_UP.en} records were journalled.", f"{g.CLEAN_UP.ja}の記録はありません。"),
    "cleanup.ok": ("done", "完了"),
    "cleanup.failed": ("FAILED", "失敗"),
    # findings
    "sev.high": ("high", "高"),
    "sev.medium": ("medium", "中"),
    "sev.low": ("low", "低"),
    "owner.tbd": ("to be assigned", "未定"),
    "find.none": ("No findings: every target was met and nothing notable was observed.", f"{g.FINDING.ja}はありません。すべての目標を達成し、特記すべき事象もありませんでした。"),
    "find.target_missed": ("Target missed: {target} — measured {measured}, target {limit}.", "目標未達：{target} — 測定値 {measured}、目標 {limit}。"),
    "find.target_missed_novalue": ("Target missed: {target} — {measured} (target {limit}).", "目標未達：{target} — {measured}（目標 {limit}）。"),
    "find.evidence": ("Evidence: {evidence}", "根拠：{evidence}"),
    "find.not_detected": ("Monitoring never showed the problem: the fault went undetected.", "監視が異常を示さず、障害は検知されませんでした。"),
    "find.not_recovered": ("The system did not recover within the run.", f"{g.RUN.ja}時間内にシステムが復旧しませんでした。"),
    "find.deviation_crashed": ("The run crashed before it finished; its evidence is incomplete.", f"{g.RUN.ja}が途中で異常終了しており、証跡がそろっていません。"),
    "find.deviation_run_status": ("The run ended with status “{status}”.", f"{g.RUN.ja}が状態「{{status}}」で終了しました。"),
    "find.not_alerted": (
        "No alert of the stack's monitoring reached faultlab after the fault took effect: the people on call would not have been told.",
        "障害の発生後、監視のアラートが一度も faultlab に届きませんでした。当番の担当者には通知されなかったことになります。",
    ),
    "find.deviation_revert_failed": ("Fault {fault} could not be reverted; the stack may need `faultlab cleanup`.", "障害 {fault} を解除できませんでした。`faultlab cleanup` が必要な可能性があります。"),
    "find.deviation_not_reverted": ("No revert was journalled for fault {fault}.", "障害 {fault} の解除記録がありません。"),
    "find.deviation_cleanup_failed": (f"A {g.CLEAN_UP.en} step failed: {{what}}", f"{g.CLEAN_UP.ja}の手順が失敗しました：{{what}}"),
    "find.deviation_fault_never_active": ("Fault {fault} never took effect: the scenario did not test what it meant to.", "障害 {fault} が発生せず、シナリオが意図した試験になっていません。"),
    "find.deviation_job_failed": ("Job {job} failed during the run.", f"{g.RUN.ja}中にジョブ {{job}} が失敗しました。"),
    "find.deviation_abort": ("The run was aborted by its abort rule: {why}", f"中止条件により{g.RUN.ja}を中止しました：{{why}}"),
    "find.deviation_slip": ("Fault {fault} took effect {slip_s} off its planned time.", "障害 {fault} の発生が予定から {slip_s}ずれました。"),
    "find.deviation_integrity_missing": ("No data-integrity check was journalled: data loss cannot be ruled out.", "データ整合性チェックの記録がないため、データ消失がなかったとは言えません。"),
    "find.impact_after_clear": (
        "Customer impact only began {after_s} after the fault was cleared: it may have another cause, and the recovery figures describe that later impact.",
        "顧客影響が始まったのは障害解除から {after_s}後です。別の原因による可能性があり、復旧に関する数値はこの後の影響についてのものです。",
    ),
    "find.detected_after_clear": (
        "Monitoring first showed a problem {after_s} after the fault was cleared: the fault itself went unnoticed while it lasted.",
        "監視が初めて異常を示したのは障害解除から {after_s}後です。障害が続いている間は検知できていません。",
    ),
    "find.baseline_unsteady": (
        "Nothing shows the system was in its steady state before the fault ({healthy} of {windows} windows healthy): the run is inconclusive, its targets cannot be judged.",
        "障害注入前にシステムが定常状態にあったことを確認できません（{windows} ウィンドウ中、正常は {healthy}）。この実施は判定不能で、目標を判定できません。",
    ),
    "find.job_overran": ("Job {job} overran its window or left no margin before {deadline} (margin {margin}).", "ジョブ {job} が許容時間を超過したか、{deadline}までの余裕がありませんでした（余裕 {margin}）。"),
    "find.error_budget_exceeded": ("The run used {consumed} of its error budget.", f"この{g.RUN.ja}でエラーバジェットの {{consumed}} を消費しました。"),
    "rem.target_missed": (
        "Find the root cause, fix it, and rerun this scenario to retest the objective.",
        "根本原因を特定して是正し、本シナリオを再実施して目標の達成を確認する。",
    ),
    "rem.default": (
        "Review it; fix it, or record a decision to accept the risk.",
        "内容を確認し、是正するか、リスク受容の判断を記録する。",
    ),
    # appendices
    "app.evidence": ("Evidence files (SHA-256 when this report was written)", "証跡ファイル（本報告書作成時の SHA-256）"),
    "app.manifest_note": (
        "manifest.json in the run directory holds the SHA-256 of every file, this report included; `faultlab verify RUN_DIR` checks them.",
        "実施ディレクトリの manifest.json に、本報告書を含む全ファイルの SHA-256 を記録しています。`faultlab verify RUN_DIR` で照合できます。",
    ),
    "app.digest": (
        f"{g.EVIDENCE_DIGEST.En}: {{digest}}. It is the SHA-256 of the list above as `sha256sum` prints it "
        "(one line per file, sorted by path): in the run directory, `sha256sum` of these files, its output given to "
        "`sha256sum` again, re-performs it. Every page of the printed report carries it with the run ID, "
        "and manifest.json records it.",
        f"{g.EVIDENCE_DIGEST.ja}：{{digest}}。上の一覧を `sha256sum` の出力形式（1 ファイル 1 行、パス順）にしたものの SHA-256 で、"
        "実施ディレクトリでこれらのファイルの `sha256sum` の出力をもう一度 `sha256sum` に通すと、同じ値を再計算できます。"
        f"印刷した報告書の各ページに{g.RUN_ID.ja} とともに記載し、manifest.json にも記録しています。",
    ),
    "app.tool_recorded": ("{tool} (recorded by the run)", f"{{tool}}（{g.RUN.ja}時に記録）"),
    "print.page": ("page", "ページ"),
    "app.tools": ("Tool versions", "ツールのバージョン"),
    "app.problems": ("Lines of the journal that could not be read", "読み取れなかったジャーナルの行"),
    # drill-plan book
    "book.title": ("Drill plan: {title}", "訓練計画：{title}"),
    "book.intro": ("One row per scenario; each links to its full report.", f"シナリオごとに 1 行で示し、各行から個別の{g.TEST_REPORT.ja}を参照できます。"),
    "book.totals": (
        "Totals: {scenarios} scenarios, {runs} runs; {passed} passed, {failed} failed, {inconclusive} inconclusive; targets {met} met, {missed} missed; {findings} findings.",
        f"合計：シナリオ {{scenarios}} 件、{g.RUN.ja} {{runs}} 回。合格 {{passed}}、不合格 {{failed}}、判定不能 {{inconclusive}}。"
        f"目標は達成 {{met}} 件、未達 {{missed}} 件。{g.FINDING.ja} {{findings}} 件。",
    ),
    "book.col.scenario": ("Scenario", "シナリオ"),
    "book.col.targets": ("Targets (measured vs target)", "目標（測定値／目標値）"),
    "book.col.verdict": ("Verdict", "判定"),
    "book.col.report": ("Report", g.TEST_REPORT.ja),
    "book.target": ("{target}: {measured} / {limit} ({outcome})", "{target}：{measured}／{limit}（{outcome}）"),
    "book.passed": ("PASSED", "合格"),
    "book.failed": ("FAILED", "不合格"),
    "book.inconclusive": ("INCONCLUSIVE", "判定不能"),
    "book.attention_targets": ("Targets missed or not judged", "未達または判定不能の目標"),
    "book.no_attention_targets": ("Every target of every run was met.", f"すべての{g.RUN.ja}のすべての目標を達成しました。"),
    "book.findings": ("Findings of every run", f"全{g.RUN.ja}の{g.FINDING.ja}"),
    "book.col.run": ("Run", g.RUN.ja),
    "book.col.target": ("Target", "目標"),
    "book.col.measured": ("Measured / target", "測定値／目標値"),
    "book.col.id": ("ID", "ID"),
    "book.col.severity": ("Severity", "重要度"),
    "book.col.finding": ("Finding", "内容"),
    "book.manifest": ("manifest.json in this directory holds the SHA-256 of every file of the plan and its runs.", f"このディレクトリの manifest.json に、計画とすべての{g.RUN.ja}のファイルの SHA-256 を記録しています。"),
    # the programme's register
    "reg.title": ("Programme register: {title}", "訓練プログラム台帳：{title}"),
    "reg.sec.about": ("About this register", "この台帳について"),
    "reg.sec.tests": ("Failure tests: last run, verdict, age", "障害試験：最終実施・判定・経過日数"),
    "reg.sec.coverage": ("Coverage of the critical operations and fault classes", "重要業務と障害種別の網羅状況"),
    "reg.sec.tolerance": ("Impact tolerances against the last drill", "影響許容度と直近の訓練の実績"),
    "reg.sec.findings": ("Findings carried forward", "繰り越しの指摘事項"),
    "reg.sec.drill": ("Programme register: this drill", "訓練プログラム台帳：今回の訓練"),
    "reg.programme": ("Programme", "プログラム"),
    "reg.now": ("Drawn up", "作成日時"),
    "reg.period": ("Period (a failure test last run longer ago is overdue)", "実施周期（これより前に実施した障害試験は期限超過）"),
    "reg.last_drill": ("Last drill", "直近の訓練"),
    "reg.rules": (
        "A failure test's last run is its newest run in the reports folder; it is overdue when that run is older than the period, or when it never ran. The findings of a run that did not pass are carried forward until a later run of the same failure test passes.",
        "障害試験の最終実施は報告フォルダ内で最も新しい実施です。その実施が実施周期より古い場合、または一度も実施していない場合は期限超過とします。合格しなかった実施の指摘事項は、同じ障害試験の後続の実施が合格するまで繰り越します。",
    ),
    "reg.totals": (
        "{tests} failure tests: {passed} passed, {failed} failed, {inconclusive} inconclusive, {never_run} never run at their last run; {overdue} overdue (period {period} days); {carried} findings carried forward, {closed} closed by a later passing run.",
        "障害試験 {tests} 件：最終実施の判定は合格 {passed}、不合格 {failed}、判定不能 {inconclusive}、未実施 {never_run}。期限超過 {overdue} 件（実施周期 {period} 日）。繰り越しの指摘事項 {carried} 件、後続の合格で解消 {closed} 件。",
    ),
    "reg.drill_intro": ("The programme “{programme}” after this drill: each failure test's verdict here, whether it is overdue, and the findings still carried forward.", "本訓練実施後のプログラム「{programme}」の状況：各障害試験の今回の判定、期限超過の有無、繰り越し中の指摘事項。"),
    "reg.drill_totals": (
        "{tests} failure tests in the programme: {passed} passed in this drill, {missed} missed (failed, inconclusive or not run); {overdue} overdue (period {period} days); {carried} findings carried forward.",
        "プログラムの障害試験 {tests} 件：今回合格 {passed} 件、未達 {missed} 件（不合格・判定不能・未実施）。期限超過 {overdue} 件（実施周期 {period} 日）。繰り越しの指摘事項 {carried} 件。",
    ),
    "reg.col.test": ("Failure test", "障害試験"),
    "reg.col.title": ("Title", "名称"),
    "reg.col.last": ("Last run", "最終実施"),
    "reg.col.verdict": ("Verdict", "判定"),
    "reg.col.age": ("Age", "経過"),
    "reg.col.overdue": ("Overdue", "期限超過"),
    "reg.col.owner": ("Owner", "担当"),
    "reg.col.this_drill": ("In this drill", "今回の判定"),
    "reg.col.operation": ("Critical operation", "重要業務"),
    "reg.col.measure": ("Outage measured as", "停止時間の測定方法"),
    "reg.col.tolerance": ("Impact tolerance", "影響許容度"),
    "reg.col.worst": ("Worst in the last drill", "直近の訓練の最悪値"),
    "reg.col.worst_test": ("By", "該当試験"),
    "reg.col.within": ("Within", "許容内"),
    "reg.col.run": ("Run", "実施"),
    "reg.col.date": ("Date", "日付"),
    "reg.col.id": ("ID", "ID"),
    "reg.col.severity": ("Severity", "重要度"),
    "reg.col.finding": ("Finding", "内容"),
    "reg.col.status": ("Status", "状況"),
    "reg.col.retest": ("Retested by", "再試験"),
    "reg.verdict.passed": ("passed", "合格"),
    "reg.verdict.failed": ("failed", "不合格"),
    "reg.verdict.inconclusive": ("inconclusive", "判定不能"),
    "reg.verdict.never_run": ("never run", "未実施"),
    "reg.drill.passed": ("passed", "合格"),
    "reg.drill.failed": ("missed: failed", "未達（不合格）"),
    "reg.drill.inconclusive": ("missed: inconclusive", "未達（判定不能）"),
    "reg.drill.not_run": ("missed: not run", "未達（未実施）"),
    "reg.status.open": ("carried: not retested", "繰り越し（未再試験）"),
    "reg.status.retested_failing": ("carried: retested, not passed", "繰り越し（再試験も不合格）"),
    "reg.status.closed": ("closed", "解消"),
    "reg.retested": ("{run} ({verdict})", "{run}（{verdict}）"),
    "reg.days": ("{days} days", "{days} 日"),
    "reg.yes": ("yes", "はい"),
    "reg.no": ("no", "いいえ"),
    "reg.covered_by": ("failure tests covering it", "網羅する障害試験の数"),
    "reg.coverage_intro": ("● marks a critical operation a failure test exercises (as the programme declares) and a fault class it injects (what its faults act on).", "● は、障害試験が対象とする重要業務（プログラムの定義による）と、注入する障害の種別（障害の対象による）を示します。"),
    "reg.coverage_gap": ("No failure test covers: {operations}.", "障害試験で網羅されていない重要業務：{operations}。"),
    "reg.tolerance_intro": ("Each critical operation's impact tolerance (the longest outage it may suffer) against the worst outage its failure tests measured in the last drill ({drill}).", "各重要業務の影響許容度（許容できる最大の停止時間）と、直近の訓練（{drill}）で対象の障害試験が測定した最悪の停止時間の比較。"),
    "reg.no_drill": ("No drill of the programme's plan has run yet: nothing to compare the tolerances with.", "プログラムの訓練計画はまだ一度も実施されていないため、影響許容度と比較できる実績がありません。"),
    "reg.measure.impact": ("customer impact until recovery", "顧客影響の発生から復旧まで"),
    "reg.measure.completion_delay": ("longest {completion}", "最長の{completion}"),
    "reg.measure.job_overrun": ("job past its deadline", "ジョブの期限超過時間"),
    "reg.class.postgres": ("database", "データベース"),
    "reg.class.link": ("network link", "ネットワーク"),
    "reg.class.service": ("process", "プロセス"),
    "reg.class.stack": ("load", "負荷"),
    "reg.class.job": ("job", "ジョブ"),
    "reg.no_carried": ("No finding is carried forward.", "繰り越しの指摘事項はありません。"),
    "reg.closed": ("Closed by a later passing run", "後続の合格で解消した指摘事項"),
    "reg.no_closed": ("None yet.", "まだありません。"),
    "reg.not_in_plan": ("(not in the plan yet)", "（訓練計画に未登録）"),
}

_PUNCTUATION: dict[str, tuple[str, str]] = {
    "kv": (": ", "："),
    "list": ("; ", "、"),
    "comma": (", ", "、"),
    "slash": (" / ", "／"),
    "sentence": (" ", ""),
}
"""What joins parts of a text in each language: a label and its value, items of a list, the
parts of a pair, two sentences (Japanese sets no space after 。)."""
_ENTRIES.update(_programme.ENTRIES)

MESSAGES: dict[str, dict[str, str]] = {
    lang: {key: texts[i] for key, texts in _ENTRIES.items()} for i, lang in enumerate(LANGUAGES)
}


class Catalogue:
    """Messages of one language; call it with a key and the values to put in.

    The system's own words come from the stack plugin's declaration and go into the
    placeholders every message may use: ``{request}``, ``{Request}``, ``{requests}``,
    ``{Requests}`` (capitalised), ``{ids}``, ``{Completion}`` (the completion delay's label) and
    ``{completion}`` (the same in a sentence).
    """

    def __init__(self, lang: str, declaration: Declaration | None = None):
        if lang not in MESSAGES:
            raise ValueError(f"unknown report language {lang!r}; known: {', '.join(LANGUAGES)}")
        self.lang = lang
        self.declaration = declaration or Declaration()
        self._messages = MESSAGES[lang]
        words = self.declaration
        completion = (words.completion or Completion()).label.get(lang)
        requests = words.requests.get(lang)
        self._words = {
            "request": words.request.get(lang),
            "Request": words.request.get(lang)[:1].upper() + words.request.get(lang)[1:],
            "requests": requests,
            "Requests": requests[:1].upper() + requests[1:],
            "ids": words.ids.get(lang),
            "Completion": completion,
            "completion": completion[:1].lower() + completion[1:] if lang == "en" else completion,
        }

    def __call__(self, key: str, **values: Any) -> str:
        text = self._messages.get(key)
        if text is None:
            return key
        return text.format(**{**self._words, **values})

    def sep(self, name: str) -> str:
        """The separator ``name`` (``kv``, ``list``, ``comma``, ``slash``, ``sentence``) of this language."""
        return _PUNCTUATION[name][LANGUAGES.index(self.lang)]

    def has(self, key: str) -> bool:
        """True when the catalogue has ``key``."""
        return key in self._messages

    def target(self, name: str) -> str:
        """The words for a target key: the catalogue's, an integrity check's declared label,
        the declared completion delay's, or the key itself."""
        key = f"target.{name}"
        if key in self._messages:
            return self(key)
        if name.startswith("metric:"):
            selector, _, bound = name[len("metric:"):].rpartition(":")
            if f"target.metric.{bound}" in self._messages:
                return self(f"target.metric.{bound}", metric=selector)
        check = self.declaration.check(name)
        if check is not None:
            return check.label.get(self.lang)
        completion = self.declaration.completion
        if completion is not None and name == completion.target:
            return self("target.completion_p99")
        return name
