"""The report's message catalogue: every sentence and label, in English and Japanese.

Each entry is ``key: (english, japanese)``, so a language can never lack a key. The
Japanese is written as a Japanese engineer would write a drill report, not word for word.
"""

from __future__ import annotations

from typing import Any

from faultlab.plugin.declaration import Completion, Declaration
from faultlab.report import messages_programme as _programme

__all__ = ["LANGUAGES", "MESSAGES", "Catalogue"]

LANGUAGES = ("en", "ja")

_ENTRIES: dict[str, tuple[str, str]] = {
    # title, banners, overall result
    "report.title": ("Drill report: {scenario_id} — {scenario_title}", "障害訓練報告書：{scenario_id} — {scenario_title}"),
    "banner.crashed": (
        "THIS RUN CRASHED. The journal has no end record: the harness stopped before the run finished. "
        "Every figure below comes from the part of the run that was recorded, and a target without evidence counts as missed.",
        "この実行は異常終了しています。ジャーナルに終了レコードがなく、ハーネスが実行の途中で停止しました。"
        "以下の数値は記録が残っている範囲だけから算出しており、証跡のない目標は未達として扱います。",
    ),
    "banner.status": ("The run did not complete: it ended with status “{status}”. {reason}", "実行は正常に完了していません（終了状態：{status}）。{reason}"),
    "overall.passed": ("Result: PASSED — all {total} targets met.", "判定：合格 — {total} 件の目標をすべて達成しました。"),
    "overall.inconclusive": (
        "Result: INCONCLUSIVE — nothing shows the system was in its steady state before the fault, so no target can be judged ({missed} of {total} missed).",
        "判定：判定不能 — 障害注入前にシステムが定常状態にあったことを確認できないため、目標を判定できません（{total} 件中 {missed} 件が未達）。",
    ),
    "overall.findings": ("Findings: {high} high, {medium} medium, {low} low.", "指摘事項：高 {high} 件、中 {medium} 件、低 {low} 件。"),
    "overall.failed": ("Result: FAILED — {missed} of {total} targets missed.", "判定：不合格 — {total} 件中 {missed} 件の目標が未達です。"),
    "overall.incomplete": (
        "Result: FAILED — the run did not complete ({status}); {missed} of {total} targets missed.",
        "判定：不合格 — 実行が完了していません（{status}）。{total} 件中 {missed} 件の目標が未達です。",
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
    "sec.deviations": ("Deviations and clean-up evidence", "計画との差異と後始末の記録"),
    "sec.findings": ("Findings", "指摘事項"),
    "sec.appendices": ("Appendices", "付録"),
    # identification
    "id.run": ("Run ID", "実行 ID"),
    "id.plan": ("Drill plan", "訓練計画"),
    "id.scenario": ("Scenario", "シナリオ"),
    "id.scenario_file": ("Scenario file", "シナリオファイル"),
    "id.scenario_hash": ("Scenario SHA-256", "シナリオの SHA-256"),
    "id.stack": ("Stack", "対象スタック"),
    "id.stack_hash": ("Stack file SHA-256", "スタック定義の SHA-256"),
    "id.window": ("Time window (UTC)", "実施時間帯（UTC）"),
    "id.duration": ("Planned duration", "予定実行時間"),
    "id.status": ("Run status", "実行状態"),
    "id.environment": ("Environment", "実施環境"),
    "id.classification": ("Classification", "文書区分"),
    "id.system_version": ("System version", "システムのバージョン"),
    "id.runbook": ("Runbook version", "復旧手順書の版"),
    "id.host": ("Host", "実行ホスト"),
    "id.faultlab": ("faultlab version (run / report)", "faultlab のバージョン（実行時／報告書作成時）"),
    "id.schema": ("Journal schema", "ジャーナル形式"),
    "id.language": ("Report language", "報告書の言語"),
    "id.generated": ("Report generated", "報告書の作成日時"),
    "lang.name": ("English", "日本語"),
    # run status
    "status.completed": ("completed", "正常終了"),
    "status.aborted": ("aborted", "中止"),
    "status.interrupted": ("interrupted", "中断"),
    "status.failed": ("failed", "失敗"),
    "status.crashed": ("crashed, no end record", "異常終了・終了レコードなし"),
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
    "mstatus.not_recovered": ("not recovered within the run", "実行時間内に復旧せず"),
    "mstatus.no_impact": ("no customer impact", "顧客影響なし"),
    "mstatus.not_measured": ("not measured", "測定できず"),
    "mstatus.not_checked": ("not checked (the plugin did not run this check)", "未確認（プラグインがこのチェックを実行していません）"),
    "mstatus.recovered_before_clear": ("recovered before the fault cleared (no time needed after it)",
                                 "障害解除より前に復旧（解除後の所要時間なし）"),
    "basis.window_step": ("window step", "ウィンドウの刻み"),
    "basis.monitor_interval": ("monitor interval", "監視の間隔"),
    "basis.probe_interval": ("probe interval", "プローブの間隔"),
    "basis.probe_and_answer": ("probe interval + the time that answer took", "プローブの間隔＋その応答にかかった時間"),
    "basis.journal": ("journal timestamp", "ジャーナルの時刻"),
    "basis.exact": ("exact", "誤差なし"),
    "paren": ("{a} ({b})", "{a}（{b}）"),
    "source.preset": ("scenario (fixed in advance)", "シナリオで事前設定"),
    "source.builtin": ("built-in data-integrity rule", "データ整合性の標準ルール"),
    # target names
    "target.detect_within": ("Time to detect (MTTD)", "検知時間（MTTD）"),
    "target.recover_within": ("Recovery time from injection (RTO)", "復旧時間（障害発生から、RTO）"),
    "target.recover_after_clear_within": ("Recovery time after the fault cleared", "障害解除後の復旧時間"),
    "target.impact_within": ("Longest customer impact", "顧客影響の継続時間"),
    "target.backlog_drain_within": ("Backlog drain time", "滞留の解消時間"),
    "target.job_margin_min": ("Least margin of a job before its deadline", "ジョブの期限までの最小余裕時間"),
    "target.error_budget": ("Error budget consumed", "エラーバジェット消費率"),
    "target.completion_p99": ("{Completion} (p99)", "{Completion}（p99）"),
    "summary.top_findings": ("Top findings", "主な指摘事項"),
    "summary.no_findings": ("No findings.", "指摘事項はありません。"),
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
    "sc.steady": ("Steady state (what a healthy window meets)", "定常状態（正常なウィンドウが満たす条件）"),
    "sc.steady_value": ("success rate ≥ {rate}, p99 latency ≤ {p99}", "成功率 {rate} 以上、p99 レイテンシ {p99} 以下"),
    "sc.steady_completion": (", p99 {completion} ≤ {max}", "、{completion}の p99 {max} 以下"),
    "sc.window": ("Window / step / hold", "ウィンドウ幅／刻み／安定確認時間"),
    "sc.load": ("Load", "負荷"),
    "sc.canary": ("Canary {requests}", "監視用テスト{requests}"),
    "sc.assumptions": ("Assumptions challenged", "検証する前提条件"),
    "sc.description": ("Narrative", "シナリオの概要"),
    "sc.no_faults": ("No fault was journalled.", "障害の記録がありません。"),
    # targets section
    "tg.intro": (
        "These targets were fixed in the scenario before the run. The built-in data-integrity rules apply to every run that checked integrity.",
        "以下の目標は実行前にシナリオで定めたものです。データ整合性の標準ルールは、整合性チェックを行ったすべての実行に適用します。",
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
    "bl.resolution": ("exact over the recorded requests; windows of {window} sliding by {step}", "記録された全リクエストから算出（誤差なし）。ウィンドウは幅 {window}、刻み {step}"),
    "bl.none": ("No requests were recorded before the fault.", "障害注入前のリクエストが記録されていません。"),
    # timeline
    "ev.phase.begin": ("phase begins: {detail}", "フェーズ開始：{detail}"),
    "ev.phase.end": ("phase ends: {detail}", "フェーズ終了：{detail}"),
    "ev.fault.planned": ("fault planned, revert plan journalled", "障害注入を予定（解除手順を記録済み）"),
    "ev.fault.injected": ("fault injected", "障害を注入"),
    "ev.fault.active": ("fault took effect", "障害が発生"),
    "ev.fault.reverted": ("fault reverted", "障害を解除"),
    "ev.fault.revert_failed": ("fault revert FAILED", "障害の解除に失敗"),
    "ev.job.started": ("job started", "ジョブ開始"),
    "ev.job.finished": ("job finished", "ジョブ終了"),
    "ev.job.failed": ("job FAILED", "ジョブ失敗"),
    "ev.decision": ("decision", "判断"),
    "ev.note.info": ("note", "記録"),
    "ev.note.warning": ("warning", "警告"),
    "ev.cleanup": ("clean-up", "後始末"),
    "ev.integrity": ("data-integrity check", "データ整合性チェック"),
    "ev.job_result": ("job result", "ジョブ結果"),
    "ev.end": ("run ended", "実行終了"),
    "ev.impact_start": ("customer impact begins", "顧客影響が発生"),
    "ev.detected": ("monitoring shows the problem (detection)", "監視が異常を検知"),
    "ev.recovered": ("recovery point: healthy from here for {hold}", "復旧時点（以後 {hold}にわたり正常）"),
    "ev.backlog_drained": ("backlog drained", "滞留を解消"),
    "ev.alert_raised": ("monitoring alert raised", "監視アラート発報"),
    "ev.alert_cleared": ("monitoring alert cleared", "監視アラート解消"),
    "ev.intake_halted": ("{Request} intake halted (the monitoring's alert)", "{Request}受付の停止（監視アラート）"),
    "ev.intake_resumed": ("{Request} intake resumed", "{Request}受付の再開"),
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
        "時刻は実行開始からの経過秒です。各数値には分解能を併記しています。",
    ),
    "res.times": ("Detection and recovery", "検知と復旧"),
    "m.t_inject": ("Fault took effect (t_inject)", "障害発生時刻（t_inject）"),
    "m.t_inject.def": ("journalled time the first fault took effect", "最初の障害が発生したとジャーナルに記録された時刻"),
    "m.t_clear": ("Fault cleared", "障害解除時刻"),
    "m.t_clear.def": ("journalled time the last fault was reverted", "最後の障害を解除したとジャーナルに記録された時刻"),
    "m.impact_start": ("Customer impact began", "顧客影響の開始"),
    "m.impact_start.def": (
        "the first request sent after t_inject that failed, was slow or was completed late, in an unhealthy window",
        "t_inject 以降に送信され、失敗・応答遅延・完了遅延となった最初のリクエスト（定常状態を外れたウィンドウ内）",
    ),
    "m.detection": ("Time to detect (MTTD)", "検知までの時間（MTTD）"),
    "m.detection.def": (
        "t_inject until the stack's own monitoring first showed the problem (not ready, or a new alert)",
        "t_inject から、スタック自身の監視が初めて異常を示すまで（レディネス異常または新たなアラート）",
    ),
    "m.recovery_point": ("Recovery point", "復旧時点"),
    "m.recovery_point.def": (
        "start of the first period after the impact that stays healthy for {hold}",
        "影響発生後、{hold}続けて正常が保たれた最初の期間の開始時刻",
    ),
    "m.rto_inject": ("Recovery time from injection (RTO)", "復旧時間（障害発生から、RTO）"),
    "m.rto_inject.def": ("recovery point − t_inject", "復旧時点 − t_inject"),
    "m.rto_clear": ("Recovery time after the fault cleared", "復旧時間（障害解除から）"),
    "m.rto_clear.def": ("recovery point − fault cleared", "復旧時点 − 障害解除時刻"),
    "m.impact_duration": ("Customer impact lasted", "顧客影響の継続時間"),
    "m.impact_duration.def": ("recovery point − impact start", "復旧時点 − 顧客影響の開始"),
    "m.backlog": ("Backlog drain time", "滞留の解消時間"),
    "m.backlog.def": (
        "fault cleared until the monitored backlog was back at its pre-fault level",
        "障害解除から、監視している滞留件数が障害前の水準に戻るまで",
    ),
    "m.data_loss": ("Data lost (recovery point, RPO)", "データ消失の範囲（復旧時点目標、RPO）"),
    "m.data_loss.def": (
        "from the last acknowledgement still durable before the first one lost to the last one lost (0: nothing acknowledged was lost)",
        "消失した受付のうち最初のものより前で最後に残っている受付から、最後に消失した受付まで（0：受付済みのデータの消失なし）",
    ),
    "res.alerts": ("Monitoring alerts and {request} intake", "監視アラートと{request}受付"),
    "alerts.none": ("The monitoring raised no alert during the run.", "実行中に監視アラートは発報されませんでした。"),
    "alerts.still": ("still raised at the end", "終了時も継続"),
    "col.alert": ("Alert", "アラート"),
    "col.raised": ("Raised", "発報"),
    "col.cleared_alert": ("Cleared", "解消"),
    "alerts.intake": ("{Request} intake halted from t = {start} to {end} ({length}).", "{Request}受付の停止：t = {start} から {end} まで（{length}）。"),
    "int.outcomes": ("Where the acknowledged {requests} ended up", "受付済みの{requests}の最終状態"),
    "int.attempted": (
        "{n} {requests} got no answer in time (the client could not know whether they were accepted); in the end state:",
        "{n} 件の{requests}は時間内に応答がなく、受付されたかどうかをクライアントは知り得ませんでした。最終状態での内訳：",
    ),
    "int.state": (
        "The check ran on the system's end state exported into the package ({state}/), so it can be re-performed offline.",
        "このチェックはパッケージに保存したシステムの最終状態（{state}/）に対して実行しており、オフラインで再実施できます。",
    ),
    "int.live": ("The check ran on the live system; its end state is not in the package.", "このチェックは稼働中のシステムに対して実行しており、最終状態はパッケージに含まれていません。"),
    "int.violations": ("Violations, one by one", "違反の一覧"),
    "int.violation": ("{check}: {id} (sent at t = {sent}, answered at t = {answered}, {wall}) — {detail}", "{check}：{id}（送信 t = {sent}、応答 t = {answered}、{wall}）— {detail}"),
    "int.violation_untimed": ("{check}: {id} — {detail}", "{check}：{id} — {detail}"),
    "col.outcome": ("Outcome", "状態"),
    "int.absent": ("absent (not in the end state)", "存在しない（最終状態にない）"),
    "m.error_budget": ("Error budget consumed", "エラーバジェット消費率"),
    "m.error_budget.def": (
        "over the whole run, failed requests ÷ ((1 − minimum success rate) × all requests): {failures} of {requests} failed",
        "実行全体の失敗リクエスト数 ÷ ((1 − 最低成功率) × 全リクエスト数)：{requests} 件中 {failures} 件失敗",
    ),
    "res.integrity": ("Data integrity", "データ整合性"),
    "int.acknowledged": ("{Requests} acknowledged by the API: {n}", "API が受付を返した{Requests}：{n} 件"),
    "int.none": ("No integrity record: the check did not run.", "整合性チェックの記録がありません（チェック未実施）。"),
    "res.impact": ("Customer impact", "顧客影響"),
    "imp.whole": ("Whole run", "実行全体"),
    "imp.during": ("During the impact (impact start to recovery point)", "影響期間中（影響開始から復旧時点まで）"),
    "imp.none": ("There was no customer impact.", "顧客影響はありませんでした。"),
    "src.canary": ("canary {requests}", "監視用テスト{requests}"),
    "src.load": ("load-generator {requests}", "負荷生成の{requests}"),
    "src.load_other": ("other load-generator requests (reads, cancels…)", "負荷生成のその他のリクエスト（照会・取消など）"),
    "src.total": ("total", "合計"),
    "res.exec": ("{Completion}", "{Completion}"),
    "period.before": ("before the fault", "障害発生前"),
    "period.during": ("while the fault was active", "障害発生中"),
    "period.after": ("after the fault cleared", "障害解除後"),
    "exec.none": ("No {completion} was recorded.", "{completion}の記録がありません。"),
    "res.jobs": ("Jobs: window and margin before the deadline", "ジョブの処理時間と期限までの余裕"),
    "jobs.none": ("No job ran in this drill.", "この訓練ではジョブを実行していません。"),
    "jobs.deadline": ("{deadline} at t = {t}", "{deadline}（t = {t}）"),
    "jobs.no_name": ("its deadline", "期限"),
    "res.charts": ("Charts", "グラフ"),
    "chart.success_rate": ("Success rate", "成功率"),
    "chart.p99": ("p99 latency (s)", "p99 レイテンシ（秒）"),
    "chart.throughput": ("Throughput (successful requests/s)", "スループット（成功リクエスト／秒）"),
    "chart.exec": ("{Completion} p99 (s)", "{Completion} p99（秒）"),
    "chart.legend": (
        "Shaded: fault active. Red line: fault took effect; grey dotted: impact began; orange dashed: detection; "
        "green dashed: recovery point; blue dotted: steady-state bound. Each point is the {window} window ending at that moment.",
        "網掛け：障害発生中。赤線：障害発生、灰色の点線：顧客影響の開始、橙の破線：検知、緑の破線：復旧時点、"
        "青の点線：定常状態の閾値。各点はその時刻までの {window}のウィンドウの値です。",
    ),
    "chart.md_note": (
        "Charts are in report.html; the data behind them are in timeseries.csv.",
        "グラフは report.html に、その元データは timeseries.csv にあります。",
    ),
    "chart.no_exec": ("No {completion} was recorded, so there is no chart of it.", "{completion}の記録がないため、グラフはありません。"),
    # deviations
    "dev.crashed": ("The harness stopped without writing an end record (crashed).", "ハーネスが終了レコードを書かずに停止しました（異常終了）。"),
    "dev.run_status": ("The run ended with status “{status}”. {reason}", "実行が状態「{status}」で終了しました。{reason}"),
    "dev.fault_never_active": ("Fault {fault} ({kind}) never took effect.", "障害 {fault}（{kind}）が発生しませんでした。"),
    "dev.slip": ("Fault {fault} ({kind}) took effect {slip_s} away from its planned time.", "障害 {fault}（{kind}）の発生が予定から {slip_s}ずれました。"),
    "dev.revert_failed": ("Reverting fault {fault} ({kind}) FAILED.", "障害 {fault}（{kind}）の解除に失敗しました。"),
    "dev.not_reverted": ("No revert was journalled for fault {fault} ({kind}).", "障害 {fault}（{kind}）の解除記録がありません。"),
    "dev.cleanup_failed": ("A clean-up step failed: {what}", "後始末に失敗しました：{what}"),
    "dev.job_failed": ("Job {job} failed.", "ジョブ {job} が失敗しました。"),
    "dev.warning": ("Warning journalled: {message}", "警告の記録：{message}"),
    "dev.abort": ("The run was aborted: {why}", "実行を中止しました：{why}"),
    "dev.integrity_missing": ("No data-integrity check was journalled.", "データ整合性チェックの記録がありません。"),
    "dev.journal_problem": ("Journal: {problem}", "ジャーナル：{problem}"),
    "dev.none": ("No deviations from the plan were recorded.", "計画との差異は記録されていません。"),
    "dev.reverts": ("Fault reverts", "障害の解除記録"),
    "dev.cleanup": ("Clean-up evidence", "後始末の記録"),
    "revert.ok": ("reverted", "解除済み"),
    "revert.failed": ("FAILED", "失敗"),
    "revert.missing": ("no revert journalled", "解除記録なし"),
    "cleanup.none": ("No clean-up records were journalled.", "後始末の記録はありません。"),
    "cleanup.ok": ("done", "完了"),
    "cleanup.failed": ("FAILED", "失敗"),
    # findings
    "sev.high": ("high", "高"),
    "sev.medium": ("medium", "中"),
    "sev.low": ("low", "低"),
    "owner.tbd": ("to be assigned", "未定"),
    "find.none": ("No findings: every target was met and nothing notable was observed.", "指摘事項はありません。すべての目標を達成し、特記すべき事象もありませんでした。"),
    "find.target_missed": ("Target missed: {target} — measured {measured}, target {limit}.", "目標未達：{target} — 測定値 {measured}、目標 {limit}。"),
    "find.target_missed_novalue": ("Target missed: {target} — {measured} (target {limit}).", "目標未達：{target} — {measured}（目標 {limit}）。"),
    "find.evidence": ("Evidence: {evidence}", "根拠：{evidence}"),
    "find.not_detected": ("Monitoring never showed the problem: the fault went undetected.", "監視が異常を検知しませんでした。障害は見逃されています。"),
    "find.not_recovered": ("The system did not recover within the run.", "実行時間内にシステムが復旧しませんでした。"),
    "find.deviation_crashed": ("The run crashed before it finished; its evidence is incomplete.", "実行が途中で異常終了しており、証跡がそろっていません。"),
    "find.deviation_run_status": ("The run ended with status “{status}”.", "実行が状態「{status}」で終了しました。"),
    "find.deviation_revert_failed": ("Fault {fault} could not be reverted; the stack may need `faultlab cleanup`.", "障害 {fault} を解除できませんでした。`faultlab cleanup` が必要な可能性があります。"),
    "find.deviation_not_reverted": ("No revert was journalled for fault {fault}.", "障害 {fault} の解除記録がありません。"),
    "find.deviation_cleanup_failed": ("A clean-up step failed: {what}", "後始末に失敗しました：{what}"),
    "find.deviation_fault_never_active": ("Fault {fault} never took effect: the scenario did not test what it meant to.", "障害 {fault} が発生せず、シナリオが意図した試験になっていません。"),
    "find.deviation_job_failed": ("Job {job} failed during the run.", "実行中にジョブ {job} が失敗しました。"),
    "find.deviation_abort": ("The run was aborted by its abort rule: {why}", "中止条件により実行を中止しました：{why}"),
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
        "障害注入前にシステムが定常状態にあったことを確認できません（{windows} ウィンドウ中、正常は {healthy}）。この実行は判定不能で、目標を判定できません。",
    ),
    "find.job_overran": ("Job {job} overran its window or left no margin before {deadline} (margin {margin}).", "ジョブ {job} が許容時間を超過したか、{deadline}までの余裕がありませんでした（余裕 {margin}）。"),
    "find.error_budget_exceeded": ("The run used {consumed} of its error budget.", "この実行でエラーバジェットの {consumed} を消費しました。"),
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
        "実行ディレクトリの manifest.json に、本報告書を含む全ファイルの SHA-256 を記録しています。`faultlab verify RUN_DIR` で照合できます。",
    ),
    "app.tools": ("Tool versions", "ツールのバージョン"),
    "app.problems": ("Lines of the journal that could not be read", "読み取れなかったジャーナルの行"),
    # drill-plan book
    "book.title": ("Drill plan: {title}", "訓練計画：{title}"),
    "book.intro": ("One row per scenario; each links to its full report.", "シナリオごとに 1 行で示し、各行から個別の報告書を参照できます。"),
    "book.totals": (
        "Totals: {scenarios} scenarios, {runs} runs; {passed} passed, {failed} failed, {inconclusive} inconclusive; targets {met} met, {missed} missed; {findings} findings.",
        "合計：シナリオ {scenarios} 件、実行 {runs} 回。合格 {passed}、不合格 {failed}、判定不能 {inconclusive}。目標は達成 {met} 件、未達 {missed} 件。指摘事項 {findings} 件。",
    ),
    "book.col.scenario": ("Scenario", "シナリオ"),
    "book.col.targets": ("Targets (measured vs target)", "目標（測定値／目標値）"),
    "book.col.verdict": ("Verdict", "判定"),
    "book.col.report": ("Report", "報告書"),
    "book.passed": ("PASSED", "合格"),
    "book.failed": ("FAILED", "不合格"),
    "book.inconclusive": ("INCONCLUSIVE", "判定不能"),
    "book.attention_targets": ("Targets missed or not judged", "未達または判定不能の目標"),
    "book.no_attention_targets": ("Every target of every run was met.", "すべての実行のすべての目標を達成しました。"),
    "book.findings": ("Findings of every run", "全実行の指摘事項"),
    "book.col.run": ("Run", "実行"),
    "book.col.target": ("Target", "目標"),
    "book.col.measured": ("Measured / target", "測定値／目標値"),
    "book.col.id": ("ID", "ID"),
    "book.col.severity": ("Severity", "重要度"),
    "book.col.finding": ("Finding", "内容"),
    "book.manifest": ("manifest.json in this directory holds the SHA-256 of every file of the plan and its runs.", "このディレクトリの manifest.json に、計画とすべての実行のファイルの SHA-256 を記録しています。"),
}

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

    def has(self, key: str) -> bool:
        """True when the catalogue has ``key``."""
        return key in self._messages

    def target(self, name: str) -> str:
        """The words for a target key: the catalogue's, an integrity check's declared label,
        the declared completion delay's, or the key itself."""
        key = f"target.{name}"
        if key in self._messages:
            return self(key)
        check = self.declaration.check(name)
        if check is not None:
            return check.label.get(self.lang)
        completion = self.declaration.completion
        if completion is not None and name == completion.target:
            return self("target.completion_p99")
        return name
