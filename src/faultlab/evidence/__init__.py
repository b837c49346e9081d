"""Drill evidence an auditor can check: pre-registered inputs, signed seals, a register.

A package (a run directory, a drill plan's folder, a gate's folder) is evidence:

- ``inputs/``: the exact bytes of the plan, scenarios and stack, with their hashes and the
  targets, written before anything starts (:mod:`.inputs`); the journal's hash chain starts
  from this record (:mod:`faultlab.journal.chain`), and the run is judged on its targets only;
- ``journal.jsonl``: every line carries the digest of the one before;
- ``state/``: the system's end state, for the integrity check to be re-performed;
- the reports, and ``manifest.json``: the SHA-256 of every file and the head of every journal;
- ``manifest.sig``: the manifest signed with the drill lead's Ed25519 key (:mod:`.keys`,
  :mod:`.seal`), or the statement that it was sealed unsigned;
- a line in the evidence register (:mod:`.register`), append-only and hash-chained.

:mod:`.verify` checks all of it (``faultlab verify --trust KEY``) and re-derives every figure
from the raw files (``--recompute``).
"""

from importlib import import_module
from typing import Any

__all__ = [
    "PublicKey",
    "SigningKey",
    "keys_dir",
    "new_key",
    "choose_signing_key",
    "load_public_key",
    "register_path",
    "read_register",
    "check_register",
    "anchor",
    "SEAL_FILE",
    "Sealer",
    "Seal",
    "seal",
    "read_seal",
    "verify_package",
    "recompute",
]

_HOME = {
    "keys": ("PublicKey", "SigningKey", "keys_dir", "new_key", "choose_signing_key", "load_public_key"),
    "register": ("register_path", "read_register", "check_register", "anchor"),
    "seal": ("SEAL_FILE", "Sealer", "Seal", "seal", "read_seal"),
    "verify": ("verify_package", "recompute"),
}


def __getattr__(name: str) -> Any:
    # Imported on first use: the engine pre-registers inputs without loading the reports.
    for module, names in _HOME.items():
        if name in names:
            return getattr(import_module(f"faultlab.evidence.{module}"), name)
    raise AttributeError(f"module 'faultlab.evidence' has no attribute {name!r}")
