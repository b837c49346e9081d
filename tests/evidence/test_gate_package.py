"""The CI gate's folder is a sealed package too: a manifest, a signature, a register line, the
baseline pre-registered and named by its SHA-256 in gate.json (one short real trial)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tamper import edit_record, faultlab, reseal_manifest, sha256

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "drill" / "scenarios" / "trading-short.yaml"


def test_the_gate_folder_is_sealed_and_names_its_baseline_by_hash(tmp_path):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), FAULTLAB_REGISTER=str(tmp_path / "reg.jsonl"))
    env.pop("PYTHONPATH", None)
    assert faultlab("keys", "new", "--name", "lead", env=env).returncode == 0
    plan = tmp_path / "gate.yaml"
    plan.write_text(f"title: Gate\nenvironment: local\nscenarios: [{SCENARIO}]\ntrials: 1\n"
                    "gate:\n  rto.p90: +5s\n", encoding="utf-8")
    baseline = tmp_path / "baseline.json"
    common = ["--reports", tmp_path / "reports", "--state-dir", tmp_path / "state"]
    made = faultlab("baseline", "update", plan, "--out", baseline, *common, env=env, timeout=300)
    assert made.returncode in (0, 1) and baseline.is_file(), made.stdout + made.stderr
    gate = faultlab("gate", plan, "--baseline", baseline, *common, env=env, timeout=300)
    assert gate.returncode in (0, 1), gate.stdout + gate.stderr
    assert "gate sealed and signed by lead" in gate.stdout
    assert "evidence anchor (paste into the change ticket): faultlab evidence gate" in gate.stdout
    gate_dir = next((tmp_path / "reports" / "gate").glob("gate-*"))

    result = json.loads((gate_dir / "gate.json").read_text())
    assert result["baseline_sha256"] == sha256(baseline)
    registration = json.loads((gate_dir / "inputs" / "registration.json").read_text())
    assert {f["role"] for f in registration["inputs"]} == {"plan", "scenario", "stack", "baseline"}
    manifest = json.loads((gate_dir / "manifest.json").read_text())
    assert manifest["kind"] == "gate" and len(manifest["runs"]) == 1 and len(manifest["journals"]) == 1
    pub = tmp_path / "config" / "faultlab" / "keys" / "lead.pub"
    checked = faultlab("verify", gate_dir, "--trust", pub, env=env)
    assert checked.returncode == 0, checked.stdout

    result["baseline_sha256"] = "0" * 64
    (gate_dir / "gate.json").write_text(json.dumps(result, indent=2) + "\n")
    reseal_manifest(gate_dir, "gate.json")
    checked = faultlab("verify", gate_dir, "--trust", pub, env=env)
    assert checked.returncode == 1
    assert "gate.json: names the baseline by SHA-256 " + "0" * 64 in checked.stdout
    assert "gate.json: changed after the package was sealed" in checked.stdout

    trial = gate_dir / manifest["runs"][0]["path"]
    number = edit_record(trial, '"event":"active"', lambda r: r.update(t=r["t"] + 10.0))
    checked = faultlab("verify", gate_dir, "--trust", pub, env=env)
    assert f"{manifest['runs'][0]['path']}/journal.jsonl:{number + 1}: tampered: the hash chain breaks here" \
        in checked.stdout, checked.stdout
