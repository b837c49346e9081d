"""``faultlab report`` and ``faultlab verify``, run as the installed command."""

from __future__ import annotations

import subprocess

import pytest
from synthetic_run import Outage, RunSpec, write_run

from faultlab.report.messages import MESSAGES


def run_cli(cmd, *args, env):
    return subprocess.run([cmd, *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def test_report_exit_codes(tmp_path, faultlab_cmd, cli_env):
    good = write_run(tmp_path / "a")
    bad = write_run(tmp_path / "b", RunSpec(outage=Outage(end=None), fault_for=40.0))
    ok = run_cli(faultlab_cmd, "report", good, env=cli_env)
    assert ok.returncode == 0, ok.stderr
    assert (good / "report.md").exists() and (good / "manifest.json").exists()
    missed = run_cli(faultlab_cmd, "report", bad, env=cli_env)
    assert missed.returncode == 1, missed.stderr
    assert "MISSED recover_within" in missed.stdout


@pytest.mark.parametrize("content", [None, b"garbage\n", b'{"type":"run","schema":"other/1"}\n'])
def test_bad_input_is_exit_2_with_a_clear_message(tmp_path, faultlab_cmd, cli_env, content):
    if content is not None:
        (tmp_path / "journal.jsonl").write_bytes(content)
    result = run_cli(faultlab_cmd, "report", tmp_path, env=cli_env)
    assert result.returncode == 2
    assert "journal" in result.stderr and "Traceback" not in result.stderr


def test_report_in_japanese_with_a_drill_plan(tmp_path, faultlab_cmd, cli_env):
    run = write_run(tmp_path)
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "title: 第4四半期 障害訓練\nenvironment: staging\n"
        "participants:\n  - {name: 佐藤, role: 訓練責任者, attended: true}\n"
        "approvals:\n  - {role: 内部監査, name: 伊藤, decision: 承認, date: 2026-11-26}\n",
        encoding="utf-8",
    )
    result = run_cli(faultlab_cmd, "report", run, "--lang", "ja", "--plan", plan, env=cli_env)
    assert result.returncode == 0, result.stderr
    md = (run / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# 障害試験結果報告書")
    for needle in ("第4四半期 障害訓練", "佐藤", "訓練責任者", "内部監査", "伊藤", "staging"):
        assert needle in md


def test_unreadable_plan_is_bad_input(tmp_path, faultlab_cmd, cli_env):
    run = write_run(tmp_path)
    plan = tmp_path / "plan.yaml"
    plan.write_text("title: [unclosed\n", encoding="utf-8")
    result = run_cli(faultlab_cmd, "report", run, "--plan", plan, env=cli_env)
    assert result.returncode == 2 and "plan.yaml" in result.stderr and "Traceback" not in result.stderr


def test_changing_one_byte_of_any_file_fails_verify_and_names_it(tmp_path, faultlab_cmd, cli_env):
    run = write_run(tmp_path)
    assert run_cli(faultlab_cmd, "report", run, env=cli_env).returncode == 0
    assert run_cli(faultlab_cmd, "verify", run, env=cli_env).returncode == 0
    files = sorted(p for p in run.rglob("*") if p.is_file())
    assert {"manifest.json", "report.html", "journal.jsonl", "timeseries.csv"} <= {p.name for p in files}
    for path in files:
        original = path.read_bytes()
        changed = bytearray(original)
        middle = len(changed) // 2
        changed[middle] ^= 0x01
        path.write_bytes(bytes(changed))
        try:
            result = run_cli(faultlab_cmd, "verify", run, env=cli_env)
        finally:
            path.write_bytes(original)
        rel = path.relative_to(run).as_posix()
        assert result.returncode == 1, rel
        assert f"FAILED {rel}:" in result.stdout, (rel, result.stdout)
    assert run_cli(faultlab_cmd, "verify", run, env=cli_env).returncode == 0


def test_missing_and_extra_files_fail_verify(tmp_path, faultlab_cmd, cli_env):
    run = write_run(tmp_path)
    assert run_cli(faultlab_cmd, "report", run, env=cli_env).returncode == 0
    (run / "services" / "extra.log").write_text("x", encoding="utf-8")
    (run / "monitor.jsonl").unlink()
    result = run_cli(faultlab_cmd, "verify", run, env=cli_env)
    assert result.returncode == 1
    assert "FAILED services/extra.log: extra" in result.stdout
    assert "FAILED monitor.jsonl: missing" in result.stdout


def test_verify_without_a_manifest_is_bad_input(tmp_path, faultlab_cmd, cli_env):
    result = run_cli(faultlab_cmd, "verify", tmp_path, env=cli_env)
    assert result.returncode == 2 and "manifest.json" in result.stderr


def test_report_recomputes_from_the_journal_alone(tmp_path, faultlab_cmd, cli_env):
    run = write_run(tmp_path)
    assert run_cli(faultlab_cmd, "report", run, env=cli_env).returncode == 0
    first = (run / "result.json").read_text(encoding="utf-8")
    (run / "result.json").write_text("{}", encoding="utf-8")
    (run / "report.ja.md").write_text("stale", encoding="utf-8")
    assert run_cli(faultlab_cmd, "report", run, env=cli_env).returncode == 0
    assert (run / "result.json").read_text(encoding="utf-8") == first
    assert not (run / "report.ja.md").exists()
    assert run_cli(faultlab_cmd, "verify", run, env=cli_env).returncode == 0


def test_help_lists_both_commands(faultlab_cmd, cli_env):
    out = run_cli(faultlab_cmd, "--help", env=cli_env).stdout
    assert "report" in out and "verify" in out
    assert MESSAGES["en"]["sec.summary"]
