"""``faultlab approve PLAN --as NAME --role ROLE --key KEY``: sign a drill plan's pinned hash."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from faultlab.errors import ExitCode

__all__ = ["register"]


def register(subparsers: Any) -> None:
    approve = subparsers.add_parser(
        "approve",
        help="approve a drill plan: sign the hash of the plan with every scenario, stack and runbook it uses",
        description=(
            "Sign, as NAME in ROLE, the pinned hash of the plan and of every scenario, stack and runbook it "
            "uses, with the Ed25519 key KEY (a key of faultlab's key folder, or a private-key file). The "
            "approval goes to <plan folder>/approvals/<plan name>/. `faultlab drill` refuses to start a plan "
            "whose required approvals are missing, expired, made by its requester, or made for other bytes."
        ),
        epilog="example: faultlab approve drills/recovery-rehearsal.yaml --as 'Chie Mori' "
               "--role 'independent reviewer' --key chie",
    )
    approve.add_argument("plan", type=Path, help="drill plan file")
    approve.add_argument("--as", dest="name", required=True, help="who approves (their name)")
    approve.add_argument("--role", required=True, help="the role the plan asks an approval of")
    approve.add_argument("--key", required=True, help="a key name of the key folder, or a private-key file")
    approve.set_defaults(handler=_approve)


def _signing_key(spec: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from faultlab.errors import InputError, Problem
    from faultlab.evidence.keys import SigningKey, load_signing_key

    path = Path(spec)
    if not path.is_file():
        return load_signing_key(spec)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError([Problem(str(path), 0, 0, "--key", f"not a readable private key: {exc}")]) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError([Problem(str(path), 0, 0, "--key", "not an Ed25519 private key")])
    return SigningKey(path.stem, key)


def _approve(args: argparse.Namespace) -> ExitCode:
    from faultlab.loader import load_plan
    from faultlab.programme.approvals import approve, pinned

    plan = load_plan(args.plan)
    key = _signing_key(args.key)
    written = approve(plan, name=args.name, role=args.role, key=key)
    pins = pinned(plan)
    print(f"approved {args.plan} as {args.name} ({args.role}) with key {key.public.key_id[:16]}")
    print(f"  pinned SHA-256 {pins.digest} over {len(pins.files)} files")
    print(f"  approval: {written}")
    return ExitCode.OK
