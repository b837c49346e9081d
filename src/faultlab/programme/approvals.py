"""Approvals of a drill plan, pinned to the hashes of everything it runs.

``faultlab approve PLAN --as NAME --role ROLE --key KEY`` signs, with the Ed25519 key of
faultlab's key folder (:mod:`faultlab.evidence.keys`), a statement naming the plan, the
approver and their role, the time, and the *pinned hash*: the SHA-256 over the list of every
file the plan uses (the plan, each scenario, each stack and each runbook, by role, path
relative to the plan and SHA-256), the same files the run pre-registers. The approval is
written to ``<plan folder>/approvals/<plan name>/<role>--<name>.json``.

Before ``faultlab drill`` starts a plan with ``require_approvals``, :func:`verify_approvals`
finds for each required role a valid approval: its signature checks out (with the key the
plan pins for the role, when it pins one), it has not expired (``valid_for``), it was not
made by the plan's requester (``requested_by``), and it was made for these very bytes. A
refusal names the role, the approver and, for other bytes, each file that changed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from faultlab.errors import InputError, Problem

__all__ = ["APPROVAL_SCHEMA", "Pinned", "pinned", "approval_folder", "approve", "verify_approvals"]

APPROVAL_SCHEMA = "faultlab.approval/1"


@dataclass(frozen=True)
class Pinned:
    """The files a plan uses, each with its role, path (relative to the plan's folder) and
    SHA-256, and the one digest over them all."""

    digest: str
    files: list[dict[str, str]]


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        import os

        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def pinned(plan: Any) -> Pinned:
    """The pinned hash of ``plan`` (loaded with :func:`faultlab.loader.load_plan`)."""
    base = Path(plan.source).parent
    found: list[tuple[str, Path]] = [("plan", Path(plan.source))]
    for scenario in plan.resolved_scenarios:
        found.append(("scenario", Path(scenario.source)))
        found.append(("stack", Path(scenario.resolved_stack.source)))
        if scenario.runbook is not None:
            found.append(("runbook", Path(scenario.runbook.file)))
    seen: set[Path] = set()
    files = []
    for role, path in found:
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        files.append({"role": role, "path": _relative(path, base),
                      "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    files.sort(key=lambda f: (f["role"], f["path"]))
    digest = hashlib.sha256(_canonical(files)).hexdigest()
    return Pinned(digest, files)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def approval_folder(plan: Any) -> Path:
    """Where the approvals of ``plan`` are kept."""
    source = Path(plan.source)
    return source.parent / "approvals" / source.stem


def approve(plan: Any, *, name: str, role: str, key: Any, now: datetime | None = None) -> Path:
    """Sign the plan's pinned hash as ``name`` in ``role`` with ``key`` (a
    :class:`faultlab.evidence.keys.SigningKey`); returns the approval file written."""
    required = {r.role: r for r in plan.require_approvals}
    if role not in required:
        known = ", ".join(sorted(required)) or "none (the plan requires no approval)"
        raise InputError([Problem(str(plan.source), 0, 0, "require_approvals",
                                  f"the plan asks no approval of the role {role!r}; roles it asks: {known}")])
    if plan.requested_by and name == plan.requested_by:
        raise InputError([Problem(str(plan.source), 0, 0, "requested_by",
                                  f"{name} requested this drill and cannot approve it")])
    now = now or datetime.now(UTC)
    pins = pinned(plan)
    statement = {
        "schema": APPROVAL_SCHEMA, "plan": Path(plan.source).name, "name": name, "role": role,
        "approved_at": now.isoformat(timespec="seconds"),
        "expires_at": (now + timedelta(seconds=required[role].valid_for)).isoformat(timespec="seconds"),
        "pinned": pins.digest, "files": pins.files,
    }
    signature = key.sign(_canonical(statement))
    folder = approval_folder(plan)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_slug(role)}--{_slug(name)}.json"
    body = {"statement": statement, "key": key.public.base64, "key_id": key.public.key_id,
            "signature": base64.b64encode(signature).decode("ascii")}
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _pinned_key(plan: Any, spec: str | None) -> Any:
    if spec is None:
        return None
    from faultlab.evidence.keys import load_public_key

    relative = Path(plan.source).parent / spec
    return load_public_key(str(relative) if relative.is_file() else spec)


def _check(body: Any, plan: Any, requirement: Any, pins: Pinned, now: datetime) -> str:
    """Why the approval ``body`` does not count (empty when it does)."""
    from faultlab.evidence.keys import PublicKey

    statement = body.get("statement") if isinstance(body, dict) else None
    if not isinstance(statement, dict) or statement.get("schema") != APPROVAL_SCHEMA:
        return "not an approval file"
    who = f"the approval by {statement.get('name')}"
    try:
        key = PublicKey.from_base64(str(body.get("key")))
        signature = base64.b64decode(str(body.get("signature")), validate=True)
    except ValueError as exc:
        return f"{who} has no readable key or signature: {exc}"
    if not key.verifies(signature, _canonical(statement)):
        return f"{who} has a signature that does not match its content (altered after signing)"
    wanted = _pinned_key(plan, requirement.key)
    if wanted is not None and wanted.key_id != key.key_id:
        return f"{who} is signed with key {key.key_id[:16]}, not the key the plan pins for this role ({wanted.short()})"
    if plan.requested_by and statement.get("name") == plan.requested_by:
        return f"{who} was made by the drill's requester, who cannot approve it"
    try:
        approved = datetime.fromisoformat(str(statement.get("approved_at")))
        expires = datetime.fromisoformat(str(statement.get("expires_at")))
    except ValueError:
        return f"{who} has no readable date"
    expires = min(expires, approved + timedelta(seconds=requirement.valid_for))
    if now > expires:
        return f"{who} expired at {expires.isoformat(timespec='seconds')}"
    if statement.get("pinned") != pins.digest:
        return f"{who} was made for other bytes: " + _changed(statement.get("files"), pins)
    return ""


def _changed(approved: Any, pins: Pinned) -> str:
    before = {f.get("path"): f.get("sha256") for f in approved or [] if isinstance(f, dict)}
    now = {f["path"]: f["sha256"] for f in pins.files}
    changed = [p for p in now if p in before and before[p] != now[p]]
    added = [p for p in now if p not in before]
    gone = [p for p in before if p not in now]
    parts = [f"{p} changed since it was approved" for p in changed]
    parts += [f"{p} is new since the approval" for p in added]
    parts += [f"{p} is no longer used" for p in gone]
    return "; ".join(parts) or "the pinned hash differs"


def verify_approvals(plan: Any, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every required approval present and valid, or InputError (exit 2) saying, per role,
    what is missing, expired, made by the requester or made for other bytes. Returns the
    approvals that count, for the report, and remembers them on the plan."""
    now = now or datetime.now(UTC)
    pins = pinned(plan)
    folder = approval_folder(plan)
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    bodies = []
    for path in files:
        try:
            bodies.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            bodies.append((path, None))
    problems: list[Problem] = []
    verified: list[dict[str, Any]] = []
    for requirement in plan.require_approvals:
        mine = [(p, b) for p, b in bodies if isinstance(b, dict) and isinstance(b.get("statement"), dict)
                and b["statement"].get("role") == requirement.role]
        reasons = []
        good = None
        for path, body in mine:
            why = _check(body, plan, requirement, pins, now)
            if not why:
                good = (path, body)
                break
            reasons.append(f"{why} ({path.name})")
        if good is None:
            text = "; ".join(reasons) if reasons else f"no approval found in {folder}"
            problems.append(Problem(str(plan.source), 0, 0, "require_approvals",
                                    f"the {requirement.role} approval is missing or invalid: {text}; "
                                    f"approve it with `faultlab approve {plan.source} --as NAME "
                                    f"--role '{requirement.role}' --key KEY`"))
            continue
        path, body = good
        statement = body["statement"]
        verified.append({"role": requirement.role, "name": statement["name"], "approved_at": statement["approved_at"],
                         "expires_at": statement["expires_at"], "key_id": body["key_id"],
                         "pinned": statement["pinned"], "file": str(path)})
    if problems:
        raise InputError(problems)
    plan._verified_approvals = verified
    return verified
