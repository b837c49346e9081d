"""Checking a package as an auditor would: ``faultlab verify DIR --trust KEY [--recompute]``.

:func:`verify_package` checks, for a run, a drill plan's folder or a gate's folder:

- every file against ``manifest.json`` (changed, missing, extra) and the manifest's own digest;
- the seal (``manifest.sig``): that it seals this manifest, that its signature holds, and,
  given trusted keys, that the signer is one of them (a signature by any other key fails);
  without trusted keys only integrity is checked, and the result says so;
- every journal's hash chain, from its pre-registration record to the head the manifest
  sealed, and the header against the registered targets;
- the pre-registered inputs against their registered SHA-256;
- every nested run: its manifest against the plan's record of it (``runs[].manifest_sha256``)
  and the run as a package of its own;
- a gate's ``gate.json`` against the baseline it pre-registered.

:func:`recompute` re-derives every figure of ``result.json`` from the raw files (the
analysis run again, the integrity check re-performed through the stack plugin's
``faultlab_check_state`` on ``state/``) and regenerates every report, naming the first
figure or line that differs.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from faultlab.evidence.keys import PublicKey
from faultlab.evidence.seal import read_seal
from faultlab.journal.chain import REGISTRATION_FILE, line_digest, read_registration
from faultlab.report.manifest import MANIFEST_FILE, SEAL_FILE, file_sha256, verify_manifest

__all__ = ["Failure", "Verification", "verify_package", "recompute"]

_JOURNAL = "journal.jsonl"


@dataclass(frozen=True)
class Failure:
    """One thing that does not hold: where (a file, ``file:line``) and what."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"

    def under(self, prefix: str) -> Failure:
        """The same failure, found in the package at ``prefix`` of the one checked."""
        return Failure(f"{prefix}/{self.where}", self.what)


@dataclass
class Verification:
    """What :func:`verify_package` found: every failure, notes on what could not be said,
    the signer the seal names (None: unsigned or no seal) and whether it is trusted."""

    root: Path
    kind: str
    manifest_sha256: str
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signer: PublicKey | None = None
    trusted: bool = False
    packages: int = 1

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures


def _safe(rel: str) -> bool:
    path = PurePosixPath(rel)
    return bool(rel) and not path.is_absolute() and ".." not in path.parts


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _changed_since_sealed(v: Verification, sealed_files: Mapping[str, Any]) -> None:
    """The manifest was rewritten after sealing: name the files that differ from the file
    list the seal carries."""
    present = {p.relative_to(v.root).as_posix() for p in v.root.rglob("*") if p.is_file()} - {MANIFEST_FILE, SEAL_FILE}
    for rel in sorted(set(sealed_files) | present):
        if rel not in present:
            v.failures.append(Failure(rel, "removed after the package was sealed"))
        elif rel not in sealed_files:
            v.failures.append(Failure(rel, "added after the package was sealed"))
        elif (now := file_sha256(v.root / rel)) != sealed_files[rel]:
            v.failures.append(Failure(rel, f"changed after the package was sealed (sealed SHA-256 {sealed_files[rel]}, "
                                           f"now {now})"))


def _check_signature(v: Verification, seal: Mapping[str, Any], trust: Sequence[PublicKey] | None) -> bool:
    """Check a signed seal's signature (and the signer against ``trust``); True when the
    seal is as its signer made it."""
    from faultlab.evidence.seal import statement

    try:
        key = PublicKey.from_base64(str(seal.get("public_key", "")), str(seal.get("key_name") or ""))
        signature = base64.b64decode(str(seal.get("signature", "")), validate=True)
    except ValueError as exc:
        v.failures.append(Failure(SEAL_FILE, f"its key or signature is not readable ({exc})"))
        return False
    v.signer = key
    authentic = key.key_id == seal.get("key_id") and key.verifies(signature, statement(seal))
    if not authentic:
        v.failures.append(Failure(SEAL_FILE, (
            f"the signature by {key.short()} does not match what the seal records: the seal was altered")))
    if trust:
        v.trusted = any(t.key_id == key.key_id for t in trust)
        if not v.trusted:
            names = ", ".join(t.short() for t in trust)
            v.failures.append(Failure(SEAL_FILE, (
                f"signed by {key.short()}, which is not among the trusted keys ({names}): a signature by "
                "an unknown key proves nothing")))
    return authentic


def _check_seal(v: Verification, manifest: Any, trust: Sequence[PublicKey] | None) -> None:
    from faultlab.evidence.seal import files_digest

    seal, bad = read_seal(v.root)
    if bad:
        v.failures.append(Failure(SEAL_FILE, bad))
    if seal is None:
        if not bad:
            text = f"the package is not sealed: it has no {SEAL_FILE}, so who wrote it cannot be checked"
            (v.failures.append(Failure(SEAL_FILE, text)) if trust else v.notes.append(text))
        return
    if seal.get("signed"):
        authentic = _check_signature(v, seal, trust)
    else:
        authentic = True
        text = "sealed unsigned (there was no signing key): who sealed it cannot be checked"
        (v.failures.append(Failure(SEAL_FILE, text)) if trust else v.notes.append(text))
    sealed_files = seal.get("files")
    if not isinstance(sealed_files, Mapping) or files_digest(sealed_files) != seal.get("files_sha256"):
        v.failures.append(Failure(SEAL_FILE, "its copy of the file list does not match its digest: it was edited"))
        sealed_files = None
    if isinstance(manifest, Mapping):
        said = (seal.get("kind"), seal.get("id"))
        listed = (manifest.get("kind"), manifest.get("id") or manifest.get("run_id"))
        if said != listed:
            v.failures.append(Failure(SEAL_FILE, f"seals {said[0]} {said[1]}, but the manifest is of {listed[0]} "
                                                 f"{listed[1]}"))
    sealed = str(seal.get("manifest_sha256"))
    if sealed != v.manifest_sha256:
        v.failures.append(Failure(MANIFEST_FILE, (
            f"changed after it was sealed: {SEAL_FILE} seals the manifest with SHA-256 {sealed}, this one has "
            f"{v.manifest_sha256}")))
        if authentic and sealed_files is not None:
            _changed_since_sealed(v, sealed_files)
    elif sealed_files is not None and isinstance(manifest, Mapping):
        files = manifest.get("files")
        listed_files = {rel: e.get("sha256") for rel, e in files.items()} if isinstance(files, Mapping) else {}
        if listed_files != dict(sealed_files):
            v.failures.append(Failure(SEAL_FILE, "its copy of the file list is not the manifest's: it was edited"))


def _line_digests(path: Path) -> list[str]:
    return [line_digest(line) for line in path.read_bytes().split(b"\n") if line.strip()]


def _check_head(v: Verification, rel: str, recorded: Mapping[str, Any], head: str | None, lines: int) -> None:
    sealed_head, sealed_lines = recorded.get("head"), recorded.get("lines")
    if head == sealed_head and lines == sealed_lines:
        return
    if head == sealed_head:
        v.failures.append(Failure(rel, (
            f"it has {lines} lines where {sealed_lines} were sealed: lines were removed or inserted before its end")))
        return
    digests = _line_digests(v.root / rel)
    if sealed_head in digests:
        at = digests.index(str(sealed_head)) + 1
        v.failures.append(Failure(rel, (
            f"{lines - at} line(s) after line {at} were added after the package was sealed (its sealed chain "
            f"ended at line {at})")))
        return
    v.failures.append(Failure(rel, (
        f"the chain no longer ends where it was sealed ({sealed_lines} lines, head {str(sealed_head)[:16]}…; now "
        f"{lines} lines, head {str(head)[:16]}…): its last line was changed or lines were removed")))


def _check_registration(v: Verification, run_rel: str) -> None:
    run_dir = v.root / run_rel if run_rel else v.root
    where = f"{run_rel}/{REGISTRATION_FILE}" if run_rel else REGISTRATION_FILE
    registration, bad = read_registration(run_dir)
    if bad:
        v.failures.append(Failure(where, bad))
    if registration is None:
        return
    for entry in registration.get("inputs") or []:
        rel = str(entry.get("file", "")) if isinstance(entry, Mapping) else ""
        if not _safe(rel):
            v.failures.append(Failure(where, f"lists an input outside the package: {rel!r}"))
            continue
        shown = f"{run_rel}/{rel}" if run_rel else rel
        path = run_dir / rel
        if not path.is_file():
            v.failures.append(Failure(shown, "missing: it was pre-registered"))
        elif file_sha256(path) != entry.get("sha256"):
            v.failures.append(Failure(shown, f"differs from its pre-registered SHA-256 ({where})"))


def _nested_roots(root: Path, manifest: Mapping[str, Any]) -> list[str]:
    """The runs listed in the manifest that are packages of their own (they have a manifest)."""
    found = []
    for entry in manifest.get("runs") or []:
        rel = str(entry.get("path", "")) if isinstance(entry, Mapping) else ""
        if _safe(rel) and (root / rel / MANIFEST_FILE).is_file():
            found.append(rel)
    return found


def _inside(rel: str, roots: Sequence[str]) -> bool:
    return any(rel == r or rel.startswith(r.rstrip("/") + "/") for r in roots)


def _check_journals(v: Verification, manifest: Mapping[str, Any], nested: Sequence[str]) -> None:
    from faultlab.journal import check_journal

    recorded = manifest.get("journals")
    journals = sorted(p.relative_to(v.root).as_posix() for p in v.root.rglob(_JOURNAL) if p.is_file())
    for rel in journals:
        run_rel = rel[: -len(_JOURNAL)].rstrip("/")
        if _inside(rel, nested):
            continue
        run_dir = v.root / run_rel if run_rel else v.root
        try:
            evidence = check_journal(run_dir)
        except Exception as exc:  # noqa: BLE001 - an unreadable journal is a finding, not a crash
            v.failures.append(Failure(rel, f"not a readable journal ({exc})"))
            continue
        for problem in evidence.tampering:
            v.failures.append(Failure(f"{rel}:{problem.line}", problem.message))
        chain = evidence.chain
        entry = recorded.get(rel) if isinstance(recorded, Mapping) else None
        if not chain.chained:
            if entry is not None:
                v.failures.append(Failure(rel, "no longer hash-chained: its chain links were removed"))
            else:
                v.notes.append(f"{rel}: not hash-chained (written before faultlab chained its journals): a changed "
                               "line is found only through the manifest")
        elif entry is None:
            if isinstance(recorded, Mapping):
                v.failures.append(Failure(rel, "its chain head is not in the manifest: the journal was added"))
            else:
                v.notes.append(f"{MANIFEST_FILE} records no journal chain heads (written before faultlab did)")
        elif isinstance(entry, Mapping):
            _check_head(v, rel, entry, chain.head, chain.lines)
        if evidence.registration is None and chain.chained:
            v.notes.append(f"{rel}: the run has no pre-registration record: its targets are the journal's")
        _check_registration(v, run_rel)


def _check_runs(v: Verification, manifest: Mapping[str, Any], trust: Sequence[PublicKey] | None) -> None:
    root_registration = v.root / REGISTRATION_FILE
    plan_digest = file_sha256(root_registration) if root_registration.is_file() else None
    for index, entry in enumerate(manifest.get("runs") or []):
        rel = str(entry.get("path", "")) if isinstance(entry, Mapping) else ""
        if not _safe(rel):
            v.failures.append(Failure(MANIFEST_FILE, f"runs[{index}] names a path outside the package: {rel!r}"))
            continue
        run_dir = v.root / rel
        if not run_dir.is_dir():
            v.failures.append(Failure(rel, f"missing: the {v.kind}'s manifest lists it (runs[{index}])"))
            continue
        recorded = entry.get("manifest_sha256")
        manifest_file = run_dir / MANIFEST_FILE
        if recorded:
            actual = file_sha256(manifest_file) if manifest_file.is_file() else None
            if actual != recorded:
                v.failures.append(Failure(f"{rel}/{MANIFEST_FILE}", (
                    f"differs from the {v.kind}'s record of it (runs[{index}].manifest_sha256 {recorded}, the file "
                    f"has {actual or 'no manifest'})")))
        registration, _ = read_registration(run_dir)
        copies = [i for i in (registration or {}).get("inputs") or []
                  if isinstance(i, Mapping) and i.get("role") == "plan-registration"]
        if plan_digest and copies and copies[0].get("sha256") != plan_digest:
            v.failures.append(Failure(f"{rel}/{REGISTRATION_FILE}", (
                f"the run was registered under another pre-registration of the {v.kind} than this folder's "
                f"{REGISTRATION_FILE}")))
        if manifest_file.is_file():
            inner = verify_package(run_dir, trust)
            v.failures += [f.under(rel) for f in inner.failures]
            v.notes += [f"{rel}: {n}" for n in inner.notes]
            v.packages += inner.packages


def _check_gate(v: Verification) -> None:
    gate = _read_json(v.root / "gate.json")
    registration, _ = read_registration(v.root)
    if not isinstance(gate, Mapping) or registration is None:
        return
    baseline = next((i for i in registration.get("inputs") or []
                     if isinstance(i, Mapping) and i.get("role") == "baseline"), None)
    if baseline is None:
        return
    if gate.get("baseline_sha256") != baseline.get("sha256"):
        v.failures.append(Failure("gate.json", (
            f"names the baseline by SHA-256 {gate.get('baseline_sha256')}, but the pre-registered baseline "
            f"({baseline.get('file')}) has {baseline.get('sha256')}")))


def verify_package(root: str | Path, trust: Sequence[PublicKey] | None = None) -> Verification:
    """Check the package at ``root`` (it must have a manifest) with ``trust`` the keys whose
    signature is accepted (None or empty: integrity only, authorship not checked)."""
    root = Path(root)
    manifest = _read_json(root / MANIFEST_FILE)
    kind = str(manifest.get("kind") or "run") if isinstance(manifest, Mapping) else "run"
    v = Verification(root, kind, file_sha256(root / MANIFEST_FILE))
    v.failures += [Failure(m.path, m.problem) for m in verify_manifest(root)]
    _check_seal(v, manifest, trust)
    if not isinstance(manifest, Mapping):
        return v
    nested = _nested_roots(root, manifest)
    _check_journals(v, manifest, nested)
    if not (root / _JOURNAL).is_file():
        _check_registration(v, "")
    _check_runs(v, manifest, trust)
    _check_gate(v)
    return v


# -- recompute -------------------------------------------------------------------------------

_NOT_FIGURES = {("analysis", "run_dir")}
"""Paths of result.json that say where the run was, not what it measured."""


def _first_difference(said: Any, derived: Any, path: tuple[str, ...] = ()) -> tuple[str, Any, Any] | None:
    if path in _NOT_FIGURES:
        return None
    if isinstance(said, dict) and isinstance(derived, dict):
        for key in list(said) + [k for k in derived if k not in said]:
            found = _first_difference(said.get(key, _MISSING), derived.get(key, _MISSING), (*path, str(key)))
            if found:
                return found
        return None
    if isinstance(said, list) and isinstance(derived, list):
        for i in range(max(len(said), len(derived))):
            found = _first_difference(said[i] if i < len(said) else _MISSING,
                                      derived[i] if i < len(derived) else _MISSING, (*path, str(i)))
            if found:
                return found
        return None
    if said != derived or type(said) is not type(derived):
        return ".".join(path), said, derived
    return None


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()


def _shown(value: Any) -> str:
    if isinstance(value, _Missing):
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


def _compare_figures(where: str, said: Any, derived: Any) -> list[Failure]:
    found = _first_difference(said, derived)
    if found is None:
        return []
    path, a, b = found
    return [Failure(where, f"{path}: the report says {_shown(a)}, the raw files give {_shown(b)}")]


def _compare_text(name: str, written: bytes, derived: bytes) -> list[Failure]:
    if written == derived:
        return []
    old = written.decode("utf-8", "replace").split("\n")
    new = derived.decode("utf-8", "replace").split("\n")
    for number, (a, b) in enumerate(zip(old, new, strict=False), start=1):
        if a != b:
            if max(len(a), len(b)) > 200:
                at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
                a, b = a[max(0, at - 60):at + 80], b[max(0, at - 60):at + 80]
            return [Failure(f"{name}:{number}", f"the report shows {a.strip()!r}, the raw files give {b.strip()!r}")]
    return [Failure(name, f"the report has {len(old)} lines, the raw files give {len(new)}")]


def _reperform_integrity(run_dir: Path, run: Any, registration: Mapping[str, Any] | None,
                         notes: list[str]) -> list[Failure]:
    from faultlab.engine import integrity
    from faultlab.journal import REQUESTS_FILE, Integrity
    from faultlab.plugin import load_plugin

    records = run.of(Integrity)
    if not records or not records[-1].state:
        if records:
            notes.append(f"{run_dir.name}: the integrity check ran on the live system (no state/): it cannot be "
                         "re-performed")
        return []
    record = records[-1]
    try:
        plugin = load_plugin(run.header.plugin or None)
    except Exception as exc:  # noqa: BLE001 - a plugin that will not load is said, not a crash
        notes.append(f"{run_dir.name}: the integrity check was not re-performed: the plugin "
                     f"{run.header.plugin!r} does not load ({exc})")
        return []
    if not plugin.offers("faultlab_check_state"):
        notes.append(f"{run_dir.name}: the plugin {run.header.plugin!r} cannot re-perform its check offline")
        return []
    requests = run_dir / REQUESTS_FILE
    acked = set(integrity.acknowledged(run.canary, requests))
    unknown = integrity.attempted(run.canary, requests, acked)
    settle = float((registration or {}).get("settle_s") or 0.0)
    found = plugin.check_state(run_dir / record.state, acked, unknown, settle_s=max(settle, 1.0))
    if found is None:
        return [Failure(record.state, "the plugin's re-performed check gave no result")]
    derived = json.loads(json.dumps(integrity.integrity_figures(found, acked, unknown)))
    said = json.loads(json.dumps({k: v for k, v in record.to_dict().items() if k in derived}))
    differences = _compare_figures(f"{_JOURNAL} (integrity record, re-performed on {record.state}/)", said, derived)
    if not differences:
        notes.append(f"{run_dir.name}: the integrity check re-performed on {record.state}/ through "
                     f"{run.header.plugin} agrees with the journal ({found.acknowledged} acknowledged, "
                     f"{len(unknown)} without an answer, {len(found.violations)} violation(s))")
    return differences


def _recompute_run(run_dir: Path, manifest: Mapping[str, Any], notes: list[str]) -> list[Failure]:
    from faultlab import __version__
    from faultlab.analysis import analyse
    from faultlab.journal import read_run
    from faultlab.report.writer import render_reports, result_data

    run = read_run(run_dir)
    analysis = analyse(run)
    failures: list[Failure] = []
    written = _read_json(run_dir / "result.json")
    derived = json.loads(json.dumps(result_data(analysis), allow_nan=False))
    if written is None:
        failures.append(Failure("result.json", "missing or not readable"))
    else:
        failures += _compare_figures("result.json", written, derived)
    failures += _reperform_integrity(run_dir, run, run.registration, notes)
    if manifest.get("faultlab_version") != __version__:
        notes.append(f"{run_dir.name}: the reports were written by faultlab {manifest.get('faultlab_version')}, "
                     f"recomputed with {__version__}: a difference may come from the version")
    report = manifest.get("report")
    if not isinstance(report, Mapping):
        notes.append(f"{run_dir.name}: the manifest does not record how the reports were written: only "
                     "result.json was compared")
        return failures
    rendered = render_reports(run_dir, analysis, langs=list(report.get("languages") or ["en"]),
                              plan_info=report.get("plan_info"), tools=dict(manifest.get("tools") or {}),
                              generated=str(report.get("generated") or ""))
    for name, data in rendered.items():
        if name == "result.json":
            continue
        path = run_dir / name
        failures += (_compare_text(name, path.read_bytes(), data) if path.is_file()
                     else [Failure(name, "missing")])
    return failures


def _recompute_book(root: Path, manifest: Mapping[str, Any]) -> list[Failure]:
    from faultlab.analysis import analyse
    from faultlab.report.book import render_book

    report = manifest.get("report")
    runs = [str(r.get("path")) for r in manifest.get("runs") or [] if isinstance(r, Mapping)]
    if not isinstance(report, Mapping) or not all(_safe(r) for r in runs):
        return []
    analyses = [analyse(root / r) for r in runs]
    rendered = render_book(root, analyses, dict(report.get("plan_info") or {}),
                           list(report.get("languages") or ["en"]))
    failures = []
    for name, data in rendered.items():
        path = root / name
        failures += _compare_text(name, path.read_bytes(), data) if path.is_file() else [Failure(name, "missing")]
    return failures


def recompute(root: str | Path) -> tuple[list[Failure], list[str]]:
    """Re-derive every figure of every run of the package at ``root`` from its raw files and
    compare them with its reports: ``(differences, notes)``, the first difference first."""
    root = Path(root)
    manifest = _read_json(root / MANIFEST_FILE)
    if not isinstance(manifest, Mapping):
        return [Failure(MANIFEST_FILE, "not readable: nothing to compare with")], []
    notes: list[str] = []
    if (root / _JOURNAL).is_file():
        return _recompute_run(root, manifest, notes), notes
    failures: list[Failure] = []
    for rel in _nested_roots(root, manifest):
        inner = _read_json(root / rel / MANIFEST_FILE)
        failures += [f.under(rel) for f in _recompute_run(root / rel, inner if isinstance(inner, Mapping) else {},
                                                          notes)]
    if manifest.get("kind") == "plan":
        failures += _recompute_book(root, manifest)
    if manifest.get("kind") == "gate":
        notes.append("gate.json's figures are not recomputed (its trials have no reports of their own); their "
                     "journals, chains and pre-registration were checked")
    return failures, notes

