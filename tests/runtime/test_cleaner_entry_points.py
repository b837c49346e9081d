"""``faultlab cleanup`` reverts a third-party fault kind's leftovers through the cleaner its
distribution registers in the ``faultlab.cleaners`` entry points; without that cleaner the
entry is reported and kept, never dropped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import faultlab

FAULTLAB = shutil.which("faultlab")
SRC = str(Path(faultlab.__file__).resolve().parent.parent)

CLEANER = textwrap.dedent("""\
    from pathlib import Path

    from faultlab.runtime.ledger import cleaner


    @cleaner(rank=7)
    def clean_widget(entry, **kwargs):
        marker = Path(entry["marker"])
        marker.write_text(f"cleaned {entry['name']} of {kwargs['run_id']}")
        return [(f"remove widget {entry['name']}", True, "removed")]
""")

RECORD = textwrap.dedent("""\
    import sys
    from faultlab.runtime.ledger import Ledger

    ledger = Ledger("widget-run", state_dir=sys.argv[1])
    ledger.record("widget", name="w1", marker=sys.argv[2])
""")


def _distribution(site: Path) -> None:
    """A third-party distribution as pip would leave it: its module and its dist-info."""
    site.mkdir()
    (site / "widget_cleaner.py").write_text(CLEANER)
    info = site / "faultlab_widgets-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: faultlab-widgets\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[faultlab.cleaners]\nwidget = widget_cleaner:clean_widget\n")


def _env(*paths: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), SRC])}


@pytest.mark.skipif(FAULTLAB is None, reason="faultlab is not installed (pip install -e '.[test]')")
def test_cleanup_calls_the_cleaner_a_third_party_distribution_registers(tmp_path: Path) -> None:
    assert FAULTLAB is not None
    site, state, marker = tmp_path / "site", tmp_path / "state", tmp_path / "widget-cleaned"
    _distribution(site)
    # the harness that recorded the widget is gone (the process exits): its leftovers are cleanup's
    subprocess.run([sys.executable, "-c", RECORD, str(state), str(marker)], env=_env(site), check=True, timeout=60)
    ledger = state / "runs" / "widget-run.json"
    assert [e["kind"] for e in json.loads(ledger.read_text())["entries"]] == ["widget"]

    unknown = subprocess.run([FAULTLAB, "cleanup", "--state-dir", str(state)], env=_env(),
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 5, unknown.stdout + unknown.stderr
    assert "no cleaner is registered for kind 'widget'" in unknown.stdout + unknown.stderr
    assert ledger.exists() and not marker.exists()  # kept for a cleanup that has the cleaner

    cleaned = subprocess.run([FAULTLAB, "cleanup", "--state-dir", str(state)], env=_env(site),
                             capture_output=True, text=True, timeout=60)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert marker.read_text() == "cleaned w1 of widget-run"
    assert "widget: remove widget w1 removed" in cleaned.stdout and "cleaned 1 run(s)" in cleaned.stdout
    assert not ledger.exists()
