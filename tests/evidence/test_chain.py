"""The journal's hash chain and pre-registration, on journals written by the real writer.

Each line carries the digest of the one before; the header that of the pre-registration
record. The reader names every break as tampering, keeps tolerating the torn last line of a
killed writer, and judges the run on the registered targets only.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from tamper import edit_record, journal_lines, write_journal

from faultlab.analysis import analyse
from faultlab.engine.clock import FakeClock
from faultlab.evidence.inputs import register_inputs
from faultlab.journal import JournalWriter, RunHeader, check_chain, check_journal, read_run
from faultlab.journal.chain import GENESIS, REGISTRATION_FILE, genesis_of, line_digest

TARGETS = {"recover_within": 30.0}
STEADY = {"success_rate": {"min": 0.99}}


def header(**over) -> RunHeader:
    fields = {"run_id": "r-1", "scenario": {"id": "FT-01"}, "targets": TARGETS, "steady_state": STEADY,
              "window_s": 1.0, "hold_s": 5.0, "duration_s": 60.0}
    fields.update(over)
    return RunHeader(**fields)


def registered_run(tmp_path: Path, *, targets=None) -> Path:
    """A run pre-registered (a scenario file and the targets), then journalled by the writer."""
    scenario = tmp_path / "ft-01.yaml"
    scenario.write_text("id: FT-01\n", encoding="utf-8")
    run = tmp_path / "run"
    register_inputs(run, [("scenario", scenario)], {
        "kind": "run", "id": "r-1", "targets": targets or TARGETS, "steady_state": STEADY, "window_s": 1.0,
        "hold_s": 5.0, "settle_s": 5.0, "duration_s": 60.0})
    clock = FakeClock(0.0)
    with JournalWriter.open(run, header(), origin=0.0, clock=clock) as journal:
        journal.phase("load", "begin")
        clock.advance(20.0)
        journal.fault("planned", "timeline[0]", kind="db_stall", target="db", planned_t=20.0)
        journal.fault("active", "timeline[0]", kind="db_stall", target="db", planned_t=20.0)
        clock.advance(10.0)
        journal.fault("reverted", "timeline[0]", kind="db_stall", target="db")
        journal.note("all done")
        journal.end("completed")
    return run


def breaks(run: Path) -> list[str]:
    return [str(p) for p in check_journal(run).tampering]


def test_the_writer_chains_every_line_to_the_one_before_and_the_header_to_the_registration(tmp_path):
    run = registered_run(tmp_path)
    raw = (run / "journal.jsonl").read_bytes().splitlines()
    assert json.loads(raw[0])["prev"] == genesis_of(run) != GENESIS
    assert genesis_of(run) == __import__("hashlib").sha256((run / REGISTRATION_FILE).read_bytes()).hexdigest()
    for before, line in zip(raw, raw[1:], strict=False):
        assert json.loads(line)["prev"] == line_digest(before)
    chain = check_chain(run / "journal.jsonl", genesis_of(run))
    assert chain.intact and chain.lines == len(raw) and chain.head == line_digest(raw[-1])
    loaded = read_run(run)
    assert loaded.tampering == () and loaded.problems == ()
    assert "prev" not in loaded.header.extra and all("prev" not in r.extra for r in loaded.records)


def test_a_torn_last_line_after_kill_9_is_not_tampering(tmp_path):
    run = registered_run(tmp_path)
    with (run / "journal.jsonl").open("a") as handle:
        handle.write('{"type":"note","t":31.0,"message":"half wri')
    loaded = read_run(run)
    assert loaded.tampering == ()
    assert [p.message for p in loaded.problems] == ["torn last line (the writer was stopped mid-line); line skipped"]


def test_a_writer_reopened_on_its_journal_continues_the_chain(tmp_path):
    run = registered_run(tmp_path)
    more = JournalWriter(run, origin=0.0, clock=FakeClock(40.0))
    more.note("appended by a second writer")
    more.close()
    assert check_chain(run / "journal.jsonl", genesis_of(run)).intact


def test_a_changed_line_is_named_by_the_line_after_it(tmp_path):
    run = registered_run(tmp_path)
    number = edit_record(run, '"event":"active"', lambda r: r.update(t=r["t"] + 10.0))
    assert breaks(run) == [f"journal.jsonl:{number + 1}: tampered: the hash chain breaks here: this line does not "
                           f"follow line {number}: line {number} (a fault record (active)) was changed, or a line "
                           "after it was removed"]


def test_removed_inserted_and_reordered_lines_are_named(tmp_path):
    run = registered_run(tmp_path)
    original = journal_lines(run)
    write_journal(run, original[:3] + original[4:])
    assert breaks(run) == ["journal.jsonl:4: tampered: the hash chain breaks here: this line does not follow line "
                           "3: line 3 (a fault record (planned)) was changed, or a line after it was removed"]
    write_journal(run, original[:3] + ['{"type":"note","t":21.0,"message":"added"}'] + original[3:])
    assert breaks(run) == [
        "journal.jsonl:4: tampered: the hash chain breaks here: this line carries no chain link (prev): the run did "
        "not write it (inserted or rewritten by hand)",
        "journal.jsonl:5: tampered: the hash chain breaks here: this line follows line 3, not line 4: line 4 "
        "(a note record) was inserted or moved here"]
    write_journal(run, original[:2] + [original[3], original[2]] + original[4:])
    assert breaks(run) == ["journal.jsonl:3: tampered: the hash chain breaks here: lines 3 to 4 are not in the "
                           "sequence the run wrote them in (it wrote line 4, then line 3): they were reordered"]


def test_a_rewritten_registration_breaks_the_chain_at_the_header(tmp_path):
    run = registered_run(tmp_path)
    path = run / REGISTRATION_FILE
    data = json.loads(path.read_text())
    data["targets"] = {"recover_within": 60.0}
    path.write_text(json.dumps(data, indent=2) + "\n")
    assert breaks(run) == [
        "journal.jsonl:1: tampered: the hash chain breaks here: the header does not follow the pre-registration "
        "record inputs/registration.json: the record or the header was changed after the run started",
        "journal.jsonl:1: tampered: the header's targets differ from the pre-registered ones in "
        "inputs/registration.json (recover_within 30.0 here, 60.0 registered); the run is judged only on the "
        "registered ones"]
    path.unlink()
    assert breaks(run)[0].endswith("the header is chained to a pre-registration record that is missing "
                                   "(inputs/registration.json): it was removed")


def test_the_run_is_judged_on_the_registered_targets_never_the_journals(tmp_path):
    run = registered_run(tmp_path, targets={"recover_within": 5.0})  # the header says 30 s
    loaded = read_run(run)
    assert loaded.header.targets == TARGETS
    assert loaded.tampered and loaded.judged_header.targets == {"recover_within": 5.0}
    analysis = analyse(loaded)
    assert analysis.targets == {"recover_within": 5.0}
    assert [(v.target, v.target_value) for v in analysis.verdicts] == [("recover_within", 5.0)]
    assert any("tampered: the header's targets differ" in p for p in analysis.problems)


def test_a_journal_without_any_link_is_read_as_written_before_the_chain(tmp_path):
    run = registered_run(tmp_path)
    lines = [json.loads(line) for line in journal_lines(run)]
    write_journal(run, [json.dumps({k: v for k, v in obj.items() if k != "prev"}) for obj in lines])
    (run / REGISTRATION_FILE).unlink()
    evidence = check_journal(run)
    assert not evidence.chain.chained and evidence.tampering == ()


def test_many_threads_writing_at_once_keep_one_unbroken_chain(tmp_path):
    journal = JournalWriter.open(tmp_path, header(), origin=0.0, clock=FakeClock(0.0))

    def hammer(n: int) -> None:
        for i in range(200):
            journal.note(f"thread {n} line {i}")

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    head = journal.head
    journal.close()
    chain = check_chain(tmp_path / "journal.jsonl", genesis_of(tmp_path))
    assert chain.intact and chain.lines == 1 + 6 * 200 and chain.head == head
