"""Signing keys: Ed25519 key pairs in faultlab's config folder, and signing and checking seals.

The folder is ``$XDG_CONFIG_HOME/faultlab/keys/``, else ``~/.config/faultlab/keys/``. A key
named ``lead`` is two files: ``lead.key`` (the private half, PKCS#8 PEM, readable by its
owner only) and ``lead.pub`` (the public half, one OpenSSH line, to hand to whoever checks the
evidence: ``faultlab verify --trust lead.pub``). A key is known by its *key id*, the SHA-256
(hex) of its 32 raw public bytes.

What a key signs is a seal's statement (:func:`faultlab.evidence.seal.statement`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from faultlab.errors import InputError, Problem

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "KEY_NAME",
    "PublicKey",
    "SigningKey",
    "keys_dir",
    "new_key",
    "list_keys",
    "load_signing_key",
    "choose_signing_key",
    "load_public_key",
]

KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""What a key's name may be: it becomes a file name."""


def keys_dir() -> Path:
    """``$XDG_CONFIG_HOME/faultlab/keys``, else ``~/.config/faultlab/keys``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "faultlab" / "keys"


def _raw(public: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class PublicKey:
    """A public key someone trusts (or that signed something): its name and id."""

    name: str
    key: Ed25519PublicKey
    source: str = ""

    @property
    def key_id(self) -> str:
        """The SHA-256 (hex) of the raw public key."""
        return hashlib.sha256(_raw(self.key)).hexdigest()

    @property
    def base64(self) -> str:
        """The raw public key, base64 (what a signature file and a register line carry)."""
        return base64.b64encode(_raw(self.key)).decode("ascii")

    def short(self) -> str:
        """``lead (key 1a2b3c4d5e6f7a8b)``, for messages."""
        return f"{self.name} (key {self.key_id[:16]})" if self.name else f"key {self.key_id[:16]}"

    def verifies(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` is this key's over ``data``."""
        from cryptography.exceptions import InvalidSignature

        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def from_base64(cls, text: str, name: str = "") -> PublicKey:
        """A key from its raw bytes in base64; ValueError when it is not an Ed25519 key."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            raw = base64.b64decode(text, validate=True)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not base64: {exc}") from exc
        if len(raw) != 32:
            raise ValueError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
        return cls(name, Ed25519PublicKey.from_public_bytes(raw))


@dataclass(frozen=True)
class SigningKey:
    """A private key of the key folder, with which the drill lead seals packages."""

    name: str
    key: Ed25519PrivateKey

    @property
    def public(self) -> PublicKey:
        """Its public half."""
        return PublicKey(self.name, self.key.public_key())

    def sign(self, data: bytes) -> bytes:
        """The Ed25519 signature over ``data``."""
        return self.key.sign(data)


def _check_name(name: str) -> None:
    if not KEY_NAME.match(name):
        raise InputError([Problem("", 0, 0, "--name", (
            f"{name!r} is not a key name: use letters, digits, '.', '_' or '-' (up to 64), starting "
            "with a letter or digit")),
        ])


def new_key(name: str, folder: Path | None = None) -> tuple[Path, Path]:
    """Make the Ed25519 key pair ``name`` in the key folder; ``(private, public)`` paths.
    An existing key is never overwritten (InputError)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    _check_name(name)
    folder = folder or keys_dir()
    private, public = folder / f"{name}.key", folder / f"{name}.pub"
    for path in (private, public):
        if path.exists():
            raise InputError([Problem(str(path), 0, 0, "", f"a key named {name!r} exists already; "
                                                            "choose another name (keys are never overwritten)")])
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    public.write_bytes(line + f" faultlab:{name}\n".encode())
    return private, public


def list_keys(folder: Path | None = None) -> list[str]:
    """The names of the signing keys in the key folder (those with a private half)."""
    folder = folder or keys_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.key") if KEY_NAME.match(p.stem))


def load_signing_key(name: str, folder: Path | None = None) -> SigningKey:
    """The signing key ``name`` of the key folder; InputError naming the keys there."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder = folder or keys_dir()
    path = folder / f"{name}.key"
    if not KEY_NAME.match(name) or not path.is_file():
        known = ", ".join(list_keys(folder)) or "none"
        raise InputError([Problem(str(folder), 0, 0, "--sign-with", (
            f"no signing key named {name!r} (keys here: {known}); make one with `faultlab keys new --name NAME`"))])
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError([Problem(str(path), 0, 0, "", f"not a readable private key: {exc}")]) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError([Problem(str(path), 0, 0, "", "not an Ed25519 private key")])
    return SigningKey(name, key)


def choose_signing_key(name: str | None, folder: Path | None = None) -> SigningKey | None:
    """The key to seal with: ``name`` when given, else the only key of the folder, else None
    (no key: packages are sealed unsigned). Several keys and no name is an InputError: which
    one signs must be chosen, never guessed."""
    if name:
        return load_signing_key(name, folder)
    names = list_keys(folder)
    if not names:
        return None
    if len(names) > 1:
        raise InputError([Problem(str(folder or keys_dir()), 0, 0, "--sign-with", (
            f"several signing keys ({', '.join(names)}): choose the one to seal with, --sign-with NAME"))])
    return load_signing_key(names[0], folder)


def load_public_key(spec: str, folder: Path | None = None) -> PublicKey:
    """A trusted key from ``spec``: a public-key file (OpenSSH line or PEM), or the name of a
    key in the key folder. InputError when it is neither."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    path = Path(spec)
    if not path.is_file():
        named = (folder or keys_dir()) / f"{spec}.pub"
        if KEY_NAME.match(spec) and named.is_file():
            path = named
        else:
            raise InputError([Problem(spec, 0, 0, "--trust", "no such public-key file (nor a key of that name in "
                                                             f"{folder or keys_dir()})")])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError([Problem(str(path), 0, 0, "--trust", f"cannot read it: {exc.strerror}")]) from exc
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_ssh_public_key(data.strip().split(b"\n")[0])
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError([Problem(str(path), 0, 0, "--trust", f"not a public key: {exc}")]) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InputError([Problem(str(path), 0, 0, "--trust", "not an Ed25519 public key")])
    name = path.stem if path.suffix == ".pub" else path.name
    parts = data.split()
    if len(parts) >= 3 and parts[2].startswith(b"faultlab:"):
        name = parts[2].decode("utf-8", "replace").removeprefix("faultlab:")
    return PublicKey(name, key, str(path))
