"""faultlab: fault-injection and disaster-drill harness.

Drills are written in YAML, run against a real stack, and measured: time to detect,
time to recover, data lost. See README.md and docs/.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("faultlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
