"""``manifest.json``: the SHA-256 of every file of a directory, and checking a directory against it.

The manifest protects itself too: ``self_sha256`` is the digest of the manifest's own bytes
with that field's value zeroed, so changing any byte of any file (the manifest included)
is caught by ``verify_manifest``. A run's manifest also records its ``evidence``: the files
the reports were written from and their digest (:func:`listing_sha256`), the one printed on
every page of the reports, which ``verify_manifest`` checks against the file hashes.
That only proves the files unchanged to whoever kept the
manifest's digest apart: anyone can rewrite a file, its hash and the self-digest. What
proves authorship is the seal (``manifest.sig``, :mod:`faultlab.evidence.seal`), the one
file beside the manifest that it does not list.

``journals`` records the hash-chain head and line count of every ``journal.jsonl`` under
the directory (:mod:`faultlab.journal.chain`), so a journal line changed, removed or
reordered is found even with every file hash recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from faultlab import __version__

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA",
    "SEAL_FILE",
    "journal_heads",
    "Mismatch",
    "file_sha256",
    "listing_sha256",
    "hash_tree",
    "tool_versions",
    "git_commit",
    "write_manifest",
    "verify_manifest",
]

MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA = "faultlab.manifest/1"
SEAL_FILE = "manifest.sig"
"""The seal beside the manifest: its signature (or the statement that it is unsigned)."""
_ZERO = "0" * 64
_SELF = re.compile(rb'"self_sha256": "([0-9a-f]{64})"')


@dataclass(frozen=True)
class Mismatch:
    """One file that does not match the manifest: ``changed``, ``missing`` or ``extra``."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256sum_line(path: str, sha256: str) -> str:
    # GNU sha256sum escapes a name holding a backslash or a newline, and starts such a line with a backslash.
    if "\\" in path or "\n" in path:
        return "\\" + sha256 + "  " + path.replace("\\", "\\\\").replace("\n", "\\n") + "\n"
    return f"{sha256}  {path}\n"


def listing_sha256(files: Iterable[tuple[str, str]]) -> str:
    """The SHA-256 of ``(path, sha256)`` pairs written as ``sha256sum`` writes them, sorted by path.

    So ``sha256sum`` over the same files, listed in that order, piped into ``sha256sum``,
    re-performs it without faultlab: ``sha256sum journal.jsonl canary.jsonl ... | sha256sum``.
    """
    text = "".join(_sha256sum_line(path, sha) for path, sha in sorted(files))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _files(root: Path) -> list[str]:
    found = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in names:
            rel = (Path(folder) / name).relative_to(root).as_posix()
            if rel not in (MANIFEST_FILE, SEAL_FILE):
                found.append(rel)
    return sorted(found)


def hash_tree(root: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "size"}}`` for every file under ``root`` but the manifest."""
    return {rel: {"sha256": file_sha256(root / rel), "size": (root / rel).stat().st_size} for rel in _files(root)}


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def tool_versions(recorded: dict[str, Any] | None = None) -> dict[str, str]:
    """Versions of the tools involved: python, locust, the report libraries, and whatever the
    run recorded (postgres, for one). Packages are looked up, never imported."""
    tools: dict[str, str] = {"python": platform.python_version(), "faultlab": __version__}
    for name in ("locust", "matplotlib", "jinja2"):
        found = _package_version(name)
        if found:
            tools[name] = found
    for name, value in (recorded or {}).items():
        tools[f"{name} (recorded by the run)"] = str(value)
    return tools


def git_commit() -> dict[str, Any] | None:
    """The commit of the faultlab checkout (and whether it had local changes), if it is one.

    Only a checkout of faultlab itself counts, not some repository that happens to hold an
    installed copy.
    """
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel"))
        if not (top / "src" / "faultlab").is_dir() or top not in here.parents:
            return None
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(dirty)} if head else None


def journal_heads(root: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"head", "lines"}}`` of every chained ``journal.jsonl`` under ``root``."""
    from faultlab.journal.chain import check_chain, genesis_of

    heads = {}
    for rel in _files(root):
        if rel.rsplit("/", 1)[-1] == "journal.jsonl":
            path = root / rel
            chain = check_chain(path, genesis_of(path.parent))
            if chain.chained:
                heads[rel] = {"head": chain.head, "lines": chain.lines}
    return heads


def write_manifest(root: str | Path, info: dict[str, Any]) -> Path:
    """Write ``root/manifest.json`` over every other file under ``root``; ``info`` adds context."""
    root = Path(root)
    body: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        **info,
        "faultlab_version": __version__,
        "git": git_commit(),
        "report_host": socket.gethostname(),
        "journals": journal_heads(root),
        "files": hash_tree(root),
        "self_sha256": _ZERO,
    }
    text = json.dumps(body, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    path = root / MANIFEST_FILE
    path.write_text(text.replace(f'"self_sha256": "{_ZERO}"', f'"self_sha256": "{digest}"'), encoding="utf-8")
    return path


def verify_manifest(root: str | Path) -> list[Mismatch]:
    """Every way ``root`` differs from its manifest; empty when every byte matches.

    Raises ``FileNotFoundError`` when there is no manifest.
    """
    root = Path(root)
    raw = (root / MANIFEST_FILE).read_bytes()
    found = list(_SELF.finditer(raw))
    try:
        manifest = json.loads(raw)
        files = manifest["files"]
        if not isinstance(files, dict) or not found:
            raise ValueError("no file list or self digest")
    except (ValueError, KeyError, TypeError):
        return [Mismatch(MANIFEST_FILE, "changed (not a readable manifest)")]
    problems: list[Mismatch] = []
    claimed = found[-1]
    zeroed = raw[: claimed.start(1)] + _ZERO.encode() + raw[claimed.end(1):]
    if hashlib.sha256(zeroed).hexdigest() != claimed.group(1).decode():
        problems.append(Mismatch(MANIFEST_FILE, "changed (its own digest does not match)"))
    present = set(_files(root))
    for rel, entry in sorted(files.items()):
        path = root / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            problems.append(Mismatch(MANIFEST_FILE, f"changed (lists a path outside the directory: {rel})"))
            continue
        if rel not in present:
            problems.append(Mismatch(rel, "missing"))
        elif not isinstance(entry, dict) or file_sha256(path) != entry.get("sha256"):
            problems.append(Mismatch(rel, "changed (SHA-256 differs)"))
    for rel in sorted(present - set(files)):
        problems.append(Mismatch(rel, "extra (not in the manifest)"))
    return problems + _evidence_problems(manifest.get("evidence"), files)


def _evidence_problems(evidence: Any, files: dict[str, Any]) -> list[Mismatch]:
    """The evidence digest a run's reports print on every page, against the manifest's own
    file list: it must be :func:`listing_sha256` of the evidence files' recorded hashes."""
    if evidence is None:
        return []
    listed = evidence.get("files") if isinstance(evidence, dict) else None
    if not isinstance(listed, list) or not all(isinstance(p, str) and isinstance(files.get(p), dict) for p in listed):
        return [Mismatch(MANIFEST_FILE, "changed (its evidence list names a file it does not hash)")]
    if listing_sha256((p, str(files[p].get("sha256"))) for p in listed) != evidence.get("sha256"):
        return [Mismatch(MANIFEST_FILE, "changed (the evidence digest printed in the reports does not match the "
                                        "evidence files' hashes)")]
    return []
