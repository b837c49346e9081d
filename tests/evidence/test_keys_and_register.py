"""Signing keys, seals and the evidence register, without a stack.

The packages here are synthetic runs (tests/analysis/synthetic_run.py) written the way a run
writes them: pre-registered, their journal chained, reported and sealed by the CLI.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import sys
from pathlib import Path

import pytest
from tamper import faultlab, rechain, reseal_manifest, sha256

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from synthetic_run import RunSpec, write_run  # noqa: E402

from faultlab.errors import InputError  # noqa: E402
from faultlab.evidence.inputs import register_inputs  # noqa: E402
from faultlab.evidence.keys import choose_signing_key, load_public_key, new_key  # noqa: E402
from faultlab.evidence.register import append_entry, check_register, read_register  # noqa: E402
from faultlab.evidence.seal import Sealer, seal  # noqa: E402
from faultlab.evidence.verify import verify_package  # noqa: E402
from faultlab.report import write_reports  # noqa: E402


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), FAULTLAB_REGISTER=str(tmp_path / "reg.jsonl"))
    out.pop("PYTHONPATH", None)
    return out


def package(parent: Path, name: str = "run-0001") -> Path:
    """A synthetic run, pre-registered and chained as a real run would be."""
    run = write_run(parent, RunSpec(run_id=name))
    scenario = parent / f"{name}.yaml"
    scenario.write_text("id: FT-01\n", encoding="utf-8")
    lines = (run / "journal.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    header["scenario"]["sha256"] = sha256(scenario)
    (run / "journal.jsonl").write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    register_inputs(run, [("scenario", scenario)], {
        "kind": "run", "id": name, "targets": header["targets"], "steady_state": header["steady_state"],
        "window_s": header["window_s"], "hold_s": header["hold_s"], "settle_s": 5.0})
    rechain(run)
    return run


def test_keys_new_makes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path, env):
    made = faultlab("keys", "new", "--name", "lead", env=env)
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "config" / "faultlab" / "keys"
    assert stat.S_IMODE((folder / "lead.key").stat().st_mode) == 0o600
    assert (folder / "lead.pub").read_text().startswith("ssh-ed25519 ") and "faultlab:lead" in (folder / "lead.pub")\
        .read_text()
    again = faultlab("keys", "new", "--name", "lead", env=env)
    assert again.returncode == 2 and "exists already" in again.stderr and "Traceback" not in again.stderr
    bad = faultlab("keys", "new", "--name", "../evil", env=env)
    assert bad.returncode == 2 and "is not a key name" in bad.stderr
    listed = faultlab("keys", "list", env=env)
    assert listed.stdout.startswith("lead ")


def test_the_signing_key_is_the_named_one_or_the_only_one_never_a_guess(tmp_path):
    folder = tmp_path / "keys"
    assert choose_signing_key(None, folder) is None
    new_key("lead", folder)
    assert choose_signing_key(None, folder).name == "lead"
    new_key("deputy", folder)
    with pytest.raises(InputError, match="several signing keys"):
        choose_signing_key(None, folder)
    assert choose_signing_key("deputy", folder).name == "deputy"
    with pytest.raises(InputError, match="no signing key named 'nobody'"):
        choose_signing_key("nobody", folder)
    pem = tmp_path / "lead.pem"
    from cryptography.hazmat.primitives import serialization

    pem.write_bytes(choose_signing_key("lead", folder).key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert load_public_key(str(pem)).key_id == load_public_key(str(folder / "lead.pub")).key_id
    with pytest.raises(InputError, match="no such public-key file"):
        load_public_key(str(tmp_path / "missing.pub"), folder)


def test_a_bad_sign_with_or_trust_stops_with_exit_2_before_anything_starts(tmp_path, env):
    run = package(tmp_path)
    done = faultlab("report", run, "--sign-with", "nobody", env=env)
    assert done.returncode == 2 and "no signing key named 'nobody'" in done.stderr
    assert not (run / "manifest.json").exists()
    (tmp_path / "junk.pub").write_text("not a key\n")
    write_reports(run)
    done = faultlab("verify", run, "--trust", tmp_path / "junk.pub", env=env)
    assert done.returncode == 2 and "not a public key" in done.stderr and "Traceback" not in done.stderr


def test_report_seals_unsigned_and_says_so_then_signed_with_the_only_key(tmp_path, env):
    run = package(tmp_path)
    done = faultlab("report", run, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sealed UNSIGNED (no signing key in" in done.stdout and "evidence anchor" in done.stdout
    seal_file = json.loads((run / "manifest.sig").read_text())
    assert seal_file["signed"] is False and "sealed without a signing key" in seal_file["note"]
    trusted = faultlab("verify", run, "--trust", "lead", env=env)
    assert trusted.returncode == 2  # no such key yet
    assert faultlab("keys", "new", "--name", "lead", env=env).returncode == 0
    trusted = faultlab("verify", run, "--trust", "lead", env=env)
    assert trusted.returncode == 1 and "sealed unsigned (there was no signing key)" in trusted.stdout
    done = faultlab("report", run, env=env)
    assert "sealed and signed by lead (key " in done.stdout
    trusted = faultlab("verify", run, "--trust", "lead", env=env)
    assert trusted.returncode == 0, trusted.stdout
    assert "signed by lead" in trusted.stdout and "a trusted key" in trusted.stdout


def test_every_byte_of_the_seal_is_checked(tmp_path, env):
    run = package(tmp_path)
    assert faultlab("keys", "new", "--name", "lead", env=env).returncode == 0
    assert faultlab("report", run, env=env).returncode == 0
    original = (run / "manifest.sig").read_bytes()
    for offset in range(0, len(original), 7):
        changed = bytearray(original)
        changed[offset] ^= 0x01
        (run / "manifest.sig").write_bytes(bytes(changed))
        found = verify_package(run, [load_public_key("lead", tmp_path / "config" / "faultlab" / "keys")])
        assert not found.ok, offset
    (run / "manifest.sig").write_bytes(original)
    assert verify_package(run).ok


def test_a_journal_changed_before_report_is_reported_as_tampered_and_not_re_judged(tmp_path, env):
    run = package(tmp_path)
    lines = (run / "journal.jsonl").read_text().splitlines()
    head = json.loads(lines[0])
    head["targets"]["recover_within"] = 12.0
    lines[0] = json.dumps(head)
    (run / "journal.jsonl").write_text("\n".join(lines) + "\n")
    done = faultlab("report", run, env=env)
    assert done.returncode == 1
    assert "journal.jsonl:1: tampered: the header's targets differ from the pre-registered ones" in done.stdout
    assert "recover_within 12.0 here, 30.0 registered" in done.stdout
    assert not (run / "report.md").exists() and not (run / "manifest.json").exists()


def test_the_register_chains_its_lines_and_names_a_changed_or_removed_one(tmp_path, env):
    register = tmp_path / "reg.jsonl"
    runs = [package(tmp_path, f"run-{i}") for i in range(3)]
    assert faultlab("keys", "new", "--name", "lead", env=env).returncode == 0
    for run in runs:
        assert faultlab("report", run, env=env).returncode == 0
    entries = read_register(register)
    assert [e.data["seq"] for e in entries] == [1, 2, 3] and check_register(register) == []
    assert faultlab("evidence", "verify", "--trust", "lead", env=env).returncode == 0
    lines = register.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["manifest_sha256"] = "0" * 64
    register.write_text("\n".join([lines[0], json.dumps(edited, separators=(",", ":")), lines[2]]) + "\n")
    done = faultlab("evidence", "verify", env=env)
    assert done.returncode == 1
    assert "FAILED line 2: its signature does not match what the line records" in done.stdout
    assert "FAILED line 3: the chain breaks here: this line does not follow line 2" in done.stdout
    register.write_text("\n".join([lines[0], lines[2]]) + "\n")
    done = faultlab("evidence", "verify", env=env)
    assert "FAILED line 2: the chain breaks here" in done.stdout and "do not run 1..2" in done.stdout


def test_the_register_names_a_package_resealed_without_a_line(tmp_path, env):
    run = package(tmp_path)
    assert faultlab("report", run, env=env).returncode == 0
    (run / "report.md").write_text("rewritten\n")
    reseal_manifest(run, "report.md")
    done = faultlab("evidence", "verify", env=env)
    assert done.returncode == 1 and "its manifest is no longer the one registered" in done.stdout


def _append_many(path: str, n: int) -> None:
    for i in range(n):
        append_entry({"kind": "run", "id": f"{os.getpid()}-{i}", "manifest_sha256": "0" * 64}, Path(path))


def test_sealing_from_several_processes_at_once_keeps_one_chain(tmp_path):
    register = tmp_path / "reg.jsonl"
    workers = [multiprocessing.Process(target=_append_many, args=(str(register), 40)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert all(w.exitcode == 0 for w in workers)
    assert len(read_register(register)) == 160 and check_register(register) == []


def test_the_anchor_names_the_package_its_manifest_its_signer_and_its_register_line(tmp_path):
    run = package(tmp_path)
    write_reports(run)
    folder = tmp_path / "keys"
    new_key("lead", folder)
    sealed = seal(run, kind="run", id="run-0001", sealer=Sealer.choose(None, register=tmp_path / "r.jsonl",
                                                                       folder=folder))
    anchor = sealed.anchor
    assert anchor.startswith(f"faultlab evidence run run-0001 manifest sha256:{sealed.manifest_sha256} signed by lead ")
    assert anchor.endswith(f"register line 1 sha256:{read_register(tmp_path / 'r.jsonl')[0].digest}")
