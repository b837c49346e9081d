"""What the three documents share: strictness and knowing the file they came from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr, ValidationInfo

from faultlab.model.types import StrictModel

__all__ = ["Document", "resolve_path", "relative_to_file"]


class Document(StrictModel):
    """A top-level YAML document (stack, scenario or drill plan)."""

    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The file this document was loaded from (None when built in memory)."""
        return self._source


def relative_to_file(value: str, base_dir: Path) -> Path:
    """``value`` as a path relative to ``base_dir`` (absolute and ``~`` paths kept), normalised."""
    path = Path(value).expanduser() if value.startswith("~") else Path(value)
    return Path(os.path.normpath(base_dir / path))


def resolve_path(value: Any, info: ValidationInfo) -> Any:
    """A relative path made absolute against ``base_dir`` from the validation context.

    The loader validates with ``context={"base_dir": <the file's folder>}``, so a path is
    relative to the file naming it; without a context the path is left as written.
    """
    if isinstance(value, str) and not value.strip():
        raise ValueError("a path cannot be empty")
    if not isinstance(value, str):
        return value
    base = (info.context or {}).get("base_dir")
    if base is None:
        return Path(value)
    return relative_to_file(value, Path(base))
