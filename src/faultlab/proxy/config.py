"""Toxiproxy's config file: a JSON array of proxies, applied like ``POST /populate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faultlab.errors import InputError
from faultlab.proxy.wire import WireError, decode_value

__all__ = ["load_config"]


def load_config(path: Path) -> Any:
    """Read and decode a config file (``[{"name", "listen", "upstream", "enabled"}, ...]``).

    Only the file's syntax is checked here; the entries are validated by populate, all at
    once, so nothing is started when one entry is wrong.
    """
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the proxy config: {exc.strerror}") from exc
    try:
        value = decode_value(body)
    except WireError as exc:
        raise InputError(f"{path}: not a JSON proxy list: {exc}") from exc
    if not isinstance(value, list):
        raise InputError(f"{path}: the proxy config must be a JSON array of proxies")
    return value
