"""What the auditor did to the evidence, as functions: change a file, rewrite its hash in the
manifest and recompute the manifest's self-hash, rewrite a journal line, re-chain a journal.

Each works on a copy of a package; none uses faultlab's own writers (a forger need not).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ZERO = "0" * 64


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reseal_manifest(root: Path, *changed: str) -> None:
    """Write the new SHA-256 (and size) of each ``changed`` file into ``root/manifest.json``
    and recompute the manifest's self-hash, the way the auditor did it by hand."""
    path = root / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for rel in changed:
        target = root / rel
        if target.exists():
            manifest["files"][rel] = {"sha256": sha256(target), "size": target.stat().st_size}
        else:
            manifest["files"].pop(rel, None)
    manifest["self_sha256"] = ZERO
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    path.write_text(text.replace(f'"self_sha256": "{ZERO}"', f'"self_sha256": "{digest}"'), encoding="utf-8")


def journal_lines(run: Path) -> list[str]:
    return (run / "journal.jsonl").read_text(encoding="utf-8").splitlines()


def write_journal(run: Path, lines: list[str]) -> None:
    (run / "journal.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def edit_record(run: Path, match: str, change: Any) -> int:
    """Apply ``change(obj)`` to the first journal line containing ``match``; its 1-based number."""
    lines = journal_lines(run)
    for i, line in enumerate(lines):
        if match in line:
            obj = json.loads(line)
            change(obj)
            lines[i] = dumps(obj)
            write_journal(run, lines)
            return i + 1
    raise AssertionError(f"no journal line contains {match!r}")


def rechain(run: Path) -> None:
    """Recompute every ``prev`` of the journal from its registration, as a forger who read
    the format would: the chain then holds, and only the seal can tell."""
    registration = run / "inputs" / "registration.json"
    prev = sha256(registration) if registration.exists() else ZERO
    out = []
    for line in journal_lines(run):
        obj = json.loads(line)
        obj["prev"] = prev
        text = dumps(obj)
        out.append(text)
        prev = hashlib.sha256(text.encode("utf-8")).hexdigest()
    write_journal(run, out)


def faultlab(*args: Any, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The installed ``faultlab`` command (next to this interpreter), run in a subprocess."""
    exe = Path(sys.executable).with_name("faultlab")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "faultlab"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)
