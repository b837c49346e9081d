"""Drill reports from a saved run: md, html (charts inline), json, junit, csv and the manifest.

``write_reports(run_dir)`` writes a run's reports; ``write_book(plan_dir, runs, plan_info)``
writes a drill plan's index over its runs; ``verify(run_dir)`` checks a directory against
its manifest.
"""

from faultlab.report.book import write_book
from faultlab.report.manifest import Mismatch, write_manifest
from faultlab.report.manifest import verify_manifest as verify
from faultlab.report.writer import ReportFiles, write_reports

__all__ = ["write_reports", "write_book", "verify", "write_manifest", "Mismatch", "ReportFiles"]
