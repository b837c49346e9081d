"""``faultlab evidence list|verify``: the register of sealed packages."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from faultlab.errors import ExitCode

__all__ = ["register", "print_seal"]


def print_seal(seal: Any, what: str = "") -> None:
    """Say how a package was sealed and print its anchor for the change ticket."""
    if seal is None:
        return
    label = f"{what} " if what else ""
    print(f"{label}{seal.describe()}; manifest SHA-256 {seal.manifest_sha256}")
    print(f"evidence anchor (paste into the change ticket): {seal.anchor}")


def register(subparsers: Any) -> None:
    """Add ``evidence list`` and ``evidence verify``."""
    evidence = subparsers.add_parser("evidence", help="the register of sealed evidence packages")
    sub = evidence.add_subparsers(dest="evidence_command", metavar="SUBCOMMAND", required=True)
    listing = sub.add_parser(
        "list",
        help="list every sealed package of the register",
        description=("Every line of the evidence register ($FAULTLAB_REGISTER, else "
                     "$XDG_DATA_HOME/faultlab/evidence-register.jsonl): when, what, its manifest's SHA-256, "
                     "who signed it."),
    )
    _register_option(listing)
    listing.set_defaults(handler=_list)
    check = sub.add_parser(
        "verify",
        help="check the register's hash chain and signatures, and the packages it lists",
        description=("Exit 0 when every line follows the one before, every signature matches its line and "
                     "every package still found where it was sealed has the manifest its latest line records; "
                     "1 naming each line that does not."),
    )
    _register_option(check)
    check.add_argument("--trust", nargs="+", action="extend", metavar="PUBKEY", default=None,
                       help="public keys (files, or key names) whose signatures are accepted")
    check.set_defaults(handler=_verify)


def _register_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--register", type=Path, default=None, metavar="FILE",
                        help="the register file (default: $FAULTLAB_REGISTER, else "
                             "$XDG_DATA_HOME/faultlab/evidence-register.jsonl)")


def _list(args: argparse.Namespace) -> ExitCode:
    from faultlab.evidence.register import read_register, register_path

    path = args.register or register_path()
    entries = read_register(path)
    if not entries:
        print(f"{path}: no sealed packages yet")
        return ExitCode.OK
    for e in entries:
        d = e.data
        signer = f"{d.get('key_name') or 'key'} {str(d.get('key_id'))[:16]}" if d.get("signed") else "UNSIGNED"
        print(f"{d.get('seq', '?'):>4}  {d.get('sealed_at', '')}  {d.get('kind', ''):<4}  {d.get('id', '')}  "
              f"manifest {str(d.get('manifest_sha256'))[:16]}  {signer}  {d.get('path', '')}")
    print(f"{len(entries)} package(s) in {path}; last line sha256:{entries[-1].digest}")
    return ExitCode.OK


def _verify(args: argparse.Namespace) -> ExitCode:
    from faultlab.evidence.keys import load_public_key
    from faultlab.evidence.register import check_register, read_register, register_path
    from faultlab.report.manifest import MANIFEST_FILE, file_sha256

    path = args.register or register_path()
    trust = [load_public_key(spec) for spec in args.trust or []]
    if not path.is_file():
        print(f"{path}: no register here (nothing was sealed with it)")
        return ExitCode.OK
    problems = [f"line {n}: {what}" if n else what for n, what in check_register(path)]
    entries = read_register(path)
    latest: dict[str, Any] = {}
    for e in entries:
        latest[str(e.data.get("path"))] = e
        if trust and e.data.get("signed") and e.data.get("key_id") not in {k.key_id for k in trust}:
            problems.append(f"line {e.line}: signed by {e.data.get('key_name') or 'a key'} "
                            f"{str(e.data.get('key_id'))[:16]}, which is not among the trusted keys")
        elif trust and not e.data.get("signed"):
            problems.append(f"line {e.line}: {e.data.get('id')} was sealed unsigned")
    moved = 0
    for where, e in latest.items():
        manifest = Path(where) / MANIFEST_FILE
        if not manifest.is_file():
            moved += 1
            continue
        if file_sha256(manifest) != e.data.get("manifest_sha256"):
            problems.append(f"line {e.line}: {where}: its manifest is no longer the one registered "
                            "(changed or resealed without a register line)")
    for problem in problems:
        print(f"FAILED {problem}")
    if moved:
        print(f"note: {moved} registered package(s) are not where they were sealed (moved or archived): "
              "not compared")
    if not trust:
        print("note: no --trust key given: signatures were checked against the keys the lines carry, not "
              "against keys you trust")
    if problems:
        print(f"{path}: {len(problems)} problem(s) in {len(entries)} line(s)")
        return ExitCode.TARGET_MISSED
    print(f"{path}: {len(entries)} line(s), chain intact, every signature matches; last line sha256:"
          f"{entries[-1].digest if entries else '-'}")
    return ExitCode.OK
