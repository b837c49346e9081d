"""Sealing a package: its manifest signed with the drill lead's key, and a register line.

A package (a run, a drill plan's folder, a gate's folder) is sealed once its manifest is
written: :func:`seal` writes ``manifest.sig`` beside ``manifest.json`` and appends a line to
the evidence register. ``manifest.sig`` is JSON::

    {"schema": "faultlab.seal/1", "manifest": "manifest.json", "manifest_sha256": "...",
     "files_sha256": "...", "kind": "run", "id": "FT-01-...", "signed": true,
     "algorithm": "ed25519", "key_id": "...", "key_name": "lead", "public_key": "<base64>",
     "signature": "<base64>", "files": {"report.md": "<sha256>", ...}}

The signature is over :func:`statement`: every field but ``signature`` and ``files``, whose
digest (:func:`files_digest`) is ``files_sha256``. ``files`` is a copy of the manifest's
file list: when someone rewrites a file, its hash in the manifest and the manifest's
self-digest, the seal still names the file that changed. With no key the package is
sealed unsigned and ``manifest.sig`` says so (``"signed": false`` and :data:`UNSIGNED`).
The manifest lists every file but itself and this one; :func:`seal_problems` checks every
byte of this one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faultlab.evidence.keys import PublicKey, SigningKey, choose_signing_key, keys_dir
from faultlab.evidence.register import Entry, anchor, append_entry
from faultlab.report.manifest import MANIFEST_FILE, SEAL_FILE, file_sha256

__all__ = ["SEAL_FILE", "SEAL_SCHEMA", "UNSIGNED", "SIGNED_FIELDS", "Sealer", "Seal", "files_digest", "statement",
           "seal_text", "seal", "read_seal"]

SEAL_SCHEMA = "faultlab.seal/1"

UNSIGNED = "sealed without a signing key: the files can be checked against each other, not who sealed them"
"""What an unsigned seal says of itself."""

SIGNED_FIELDS = ("schema", "manifest", "manifest_sha256", "files_sha256", "kind", "id", "signed", "algorithm",
                 "key_id", "key_name", "public_key")
"""The fields of a signed seal its signature covers (``files`` through ``files_sha256``);
a register line carries them too, so it can be checked without the package."""


def files_digest(files: Mapping[str, str]) -> str:
    """The SHA-256 of a file list ``{relative path: sha256}`` (sorted, compact JSON)."""
    text = json.dumps(dict(files), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def statement(fields: Mapping[str, Any]) -> bytes:
    """The bytes a seal's signature is over: its :data:`SIGNED_FIELDS`, sorted, compact JSON."""
    signed = {k: fields.get(k) for k in SIGNED_FIELDS}
    return (SEAL_SCHEMA + "\n" + json.dumps(signed, sort_keys=True, separators=(",", ":"),
                                            ensure_ascii=False)).encode("utf-8")


def seal_text(body: Mapping[str, Any]) -> str:
    """``manifest.sig`` as faultlab writes it (verify compares the file with this, byte for byte)."""
    return json.dumps(dict(body), indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class Sealer:
    """How packages are sealed: with ``signer`` (None: unsigned, ``unsigned_reason`` says
    why), into the register at ``register`` (None: the default register)."""

    signer: SigningKey | None
    register: Path | None = None
    unsigned_reason: str = ""

    @classmethod
    def choose(cls, name: str | None = None, *, register: Path | None = None,
               folder: Path | None = None) -> Sealer:
        """The drill lead's key (``name``, or the only key there is; none: unsigned).
        InputError when ``name`` is unknown or several keys leave the choice open."""
        signer = choose_signing_key(name, folder)
        why = "" if signer else (f"no signing key in {folder or keys_dir()}; make one with "
                                 "`faultlab keys new --name NAME`")
        return cls(signer, register, why)


@dataclass(frozen=True)
class Seal:
    """A sealed package: what it is, its manifest's SHA-256, its signer (None: unsigned)
    and its register line."""

    root: Path
    kind: str
    id: str
    manifest_sha256: str
    signer: PublicKey | None
    entry: Entry
    unsigned_reason: str = ""

    @property
    def anchor(self) -> str:
        """The one line to paste into a change ticket."""
        return anchor(self.entry)

    def describe(self) -> str:
        """``sealed and signed by lead (key ...)`` or ``sealed UNSIGNED: why``."""
        if self.signer is None:
            return f"sealed UNSIGNED ({self.unsigned_reason or 'no signing key'})"
        return f"sealed and signed by {self.signer.short()}"


def seal(root: str | Path, *, kind: str, id: str, sealer: Sealer) -> Seal:
    """Sign ``root``'s manifest (or say it is unsigned) in ``manifest.sig`` and register it."""
    root = Path(root)
    digest = file_sha256(root / MANIFEST_FILE)
    listed = json.loads((root / MANIFEST_FILE).read_bytes()).get("files") or {}
    files = {rel: str(entry.get("sha256")) for rel, entry in sorted(listed.items())}
    body: dict[str, Any] = {"schema": SEAL_SCHEMA, "manifest": MANIFEST_FILE, "manifest_sha256": digest,
                            "files_sha256": files_digest(files), "kind": kind, "id": id}
    public = None
    if sealer.signer is not None:
        public = sealer.signer.public
        body.update(signed=True, algorithm="ed25519", key_id=public.key_id, key_name=public.name,
                    public_key=public.base64)
        body["signature"] = base64.b64encode(sealer.signer.sign(statement(body))).decode("ascii")
    else:
        body.update(signed=False, note=UNSIGNED)
    body["files"] = files
    (root / SEAL_FILE).write_text(seal_text(body), encoding="utf-8")
    fields = {k: body[k] for k in (*SIGNED_FIELDS, "signature") if k in body}
    entry = append_entry({**fields, "path": str(root.resolve())}, sealer.register)
    return Seal(root, kind, id, digest, public, entry, sealer.unsigned_reason)


def read_seal(root: str | Path) -> tuple[dict[str, Any] | None, str]:
    """``manifest.sig`` of a package and what is wrong with its form ('' when it reads as
    faultlab wrote it; ``(None, '')`` when the package has none)."""
    path = Path(root) / SEAL_FILE
    if not path.is_file():
        return None, ""
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except (OSError, ValueError) as exc:
        return None, f"not readable JSON ({exc})"
    if not isinstance(data, dict) or data.get("schema") != SEAL_SCHEMA:
        return None, f"not a {SEAL_SCHEMA} record"
    if raw != seal_text(data).encode("utf-8"):
        return data, "not as faultlab wrote it: it was edited"
    if not data.get("signed") and data.get("note") != UNSIGNED:
        return data, "an unsigned seal that does not say so as faultlab does: it was edited"
    return data, ""
