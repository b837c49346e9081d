"""``junit.xml``: one test case per target, so CI shows each objective as passed or failed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from faultlab.analysis import Analysis, Verdict
from faultlab.report.document import target_label
from faultlab.report.format import measure_text, resolution_text, target_text
from faultlab.report.messages import Catalogue

__all__ = ["verdict_message", "write_junit"]


def verdict_message(v: Verdict, cat: Catalogue | None = None) -> str:
    """``Time to detect (MTTD): measured 6.200 s (resolution ...) vs target ≤ 5.000 s``."""
    cat = cat or Catalogue("en")
    text = (f"{target_label(v.target, cat)}: measured {measure_text(v.measured, cat)} "
            f"(resolution {resolution_text(v.measured, cat)}) vs target {target_text(v, cat)}")
    return text + (f"; evidence: {', '.join(v.evidence)}" if v.evidence else "")


def write_junit(analysis: Analysis, path: Path) -> Path:
    """Write the JUnit XML of ``analysis``; a run that did not complete adds one error case."""
    cat = Catalogue("en", analysis.declaration)
    scenario = str(analysis.scenario.get("id") or "scenario")
    suite_name = f"faultlab.{scenario}"
    incomplete = analysis.status != "completed" or analysis.inconclusive
    failures = sum(1 for v in analysis.verdicts if not v.met)
    suite = ET.Element("testsuite", {
        "name": suite_name,
        "tests": str(len(analysis.verdicts) + (1 if incomplete else 0)),
        "failures": str(failures),
        "errors": "1" if incomplete else "0",
        "skipped": "0",
        "timestamp": analysis.origin_wall or "",
        "hostname": analysis.host or "",
    })
    props = ET.SubElement(suite, "properties")
    for name, value in (("run_id", analysis.run_id), ("status", analysis.status),
                        ("scenario_sha256", str(analysis.scenario.get("sha256", "")))):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for v in analysis.verdicts:
        case = ET.SubElement(suite, "testcase", {"classname": suite_name, "name": v.target})
        message = verdict_message(v, cat)
        if not v.met:
            failure = ET.SubElement(case, "failure", {"message": message, "type": v.outcome})
            failure.text = message
        else:
            ET.SubElement(case, "system-out").text = message
    if incomplete:
        case = ET.SubElement(suite, "testcase", {"classname": suite_name, "name": "run"})
        reason = f"the run did not complete: status {analysis.status}"
        if analysis.inconclusive:
            reason = "the run is inconclusive: nothing shows the system was in its steady state before the fault"
        if analysis.crashed:
            reason = "the run crashed: the journal has no end record"
        ET.SubElement(case, "error", {"message": reason, "type": analysis.status}).text = reason
    root = ET.Element("testsuites", {"name": "faultlab"})
    root.append(suite)
    ET.indent(root)
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")
    return path
