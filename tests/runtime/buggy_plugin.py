"""A drill plugin with a bug: building its canary raises, an unexpected error in mid-run."""

from __future__ import annotations

from typing import Any


def faultlab_canary(stack: Any) -> Any:
    raise ZeroDivisionError("the plugin divided by zero")


canary = faultlab_canary  # the same hook under the name of the protocol before hooks had a prefix
