"""Sealing a package: its manifest signed with the drill lead's key, and a register line.

A package (a run, a drill plan's folder, a gate's folder) is sealed once its manifest is
written: :func:`seal` writes ``manifest.sig`` beside ``manifest.json`` and appends a line to
the evidence register. ``manifest.sig`` is JSON::

    {"schema": "faultlab.seal/1", "manifest": "manifest.json", "manifest_sha256": "...",
     "kind": "run", "id": "FT-01-...", "signed": true, "algorithm": "ed25519",
     "key_id": "...", "key_name": "lead", "public_key": "<base64>", "signature": "<base64>"}

The signature is over :func:`faultlab.evidence.keys.seal_statement` of the manifest's
SHA-256. With no key the package is sealed unsigned, and ``manifest.sig`` says so
(``"signed": false`` and why). The manifest lists every file but itself and this one.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faultlab.evidence.keys import PublicKey, SigningKey, choose_signing_key, keys_dir
from faultlab.evidence.register import Entry, anchor, append_entry
from faultlab.report.manifest import MANIFEST_FILE, SEAL_FILE, file_sha256

__all__ = ["SEAL_FILE", "SEAL_SCHEMA", "Sealer", "Seal", "seal", "read_seal"]

SEAL_SCHEMA = "faultlab.seal/1"


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
            return f"sealed UNSIGNED: {self.unsigned_reason or 'no signing key'}"
        return f"sealed and signed by {self.signer.short()}"


def seal(root: str | Path, *, kind: str, id: str, sealer: Sealer) -> Seal:
    """Sign ``root``'s manifest (or say it is unsigned) in ``manifest.sig`` and register it."""
    root = Path(root)
    digest = file_sha256(root / MANIFEST_FILE)
    body: dict[str, Any] = {"schema": SEAL_SCHEMA, "manifest": MANIFEST_FILE, "manifest_sha256": digest,
                            "kind": kind, "id": id}
    public = None
    if sealer.signer is not None:
        public = sealer.signer.public
        body.update(signed=True, algorithm="ed25519", key_id=public.key_id, key_name=public.name,
                    public_key=public.base64,
                    signature=base64.b64encode(sealer.signer.sign(digest)).decode("ascii"))
    else:
        body.update(signed=False, why=sealer.unsigned_reason or "no signing key")
    (root / SEAL_FILE).write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    fields: dict[str, Any] = {k: body.get(k) for k in ("kind", "id", "manifest_sha256", "signed", "key_id", "key_name",
                                       "public_key", "signature") if k in body}
    entry = append_entry({**fields, "path": str(root.resolve())}, sealer.register)
    return Seal(root, kind, id, digest, public, entry, "" if public else body["why"])


def read_seal(root: str | Path) -> tuple[dict[str, Any] | None, str]:
    """``manifest.sig`` of a package and what is wrong with it ('' when it reads; ``(None,
    '')`` when the package has none)."""
    path = Path(root) / SEAL_FILE
    if not path.is_file():
        return None, ""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return None, f"not readable JSON ({exc})"
    if not isinstance(data, dict) or data.get("schema") != SEAL_SCHEMA:
        return None, f"not a {SEAL_SCHEMA} record"
    return data, ""
