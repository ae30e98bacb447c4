"""JUnit XML for `agtrace check --junit PATH`: one test case per rule.

JUnit XML is the report format every CI system displays (GitHub test
reporters, GitLab's `artifacts:reports:junit`, Jenkins, Azure). The shape
follows the common schema (Jenkins/Surefire, which GitLab and the GitHub
actions read):

    <testsuites name="agtrace check" tests failures errors skipped time>
      <testsuite name=... tests failures errors skipped time timestamp>
        <testcase name="RULE" classname="SOURCE" file line time>
          <failure message="EXPECT: measured VALUE" type="AssertionError">details</failure>
          <system-out>measured / expected / selection</system-out>

A failing rule of severity "warn" does not fail the run, so it is not a
<failure>: it is reported as <skipped message="warning: ...">, which CI
pages show apart from passes without turning the build red.

Text is stripped of the characters XML 1.0 cannot carry (control
characters), so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from agtrace.analysis.check import FAIL, WARN, CheckReport, RuleResult

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _t(text) -> str:
    return _XML_BAD.sub("\ufffd", str(text))


def _secs(s: float) -> str:
    return f"{s:.3f}"


def _details(r: RuleResult) -> str:
    rule = r.rule
    d = r.to_dict()
    lines = [
        f"rule: {rule.name}",
        f"expect: {rule.expect.text}",
        f"measured: {r.measured}",
        f"verdict: {r.verdict}",
    ]
    if d["where"]:
        lines.append(f"where: {d['where']}")
    if d["of"]:
        lines.append(f"of: {d['of']}")
    if rule.scope != "span":
        lines.append(f"scope: {rule.scope}")
    if rule.severity != "error":
        lines.append(f"severity: {rule.severity}")
    if rule.description:
        lines.append(f"description: {rule.description}")
    for k, v in d["detail"].items():
        if v is not None:
            lines.append(f"{k}: {v}")
    for u in r.unknown_fields:
        lines.append(f"warning: {u.text()}")
    lines.append(f"source: {rule.source}")
    return "\n".join(lines) + "\n"


def junit_xml(report: CheckReport, *, suite: str = "agtrace check", timestamp: datetime | None = None) -> str:
    """The report as a JUnit XML document (text, with the XML declaration)."""
    results = report.results
    failures = sum(r.verdict == FAIL for r in results)
    skipped = sum(r.verdict == WARN for r in results)
    total = _secs(report.seconds)
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": "0", "skipped": str(skipped),
              "time": total}
    root = ET.Element("testsuites", {"name": "agtrace check", **counts})
    ts = (timestamp or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    suite_el = ET.SubElement(root, "testsuite", {"name": _t(suite), **counts,
                                                 "timestamp": ts.isoformat(timespec="seconds")})
    for r in results:
        rule = r.rule
        attrs = {"name": _t(rule.name), "classname": _t(rule.file or "agtrace.check"), "time": _secs(r.seconds)}
        if rule.file:
            attrs["file"] = _t(rule.file)
            if rule.line:
                attrs["line"] = str(rule.line)
        case = ET.SubElement(suite_el, "testcase", attrs)
        if r.verdict == FAIL:
            el = ET.SubElement(case, "failure", {"message": _t(r.message()), "type": "AssertionError"})
            el.text = _t(_details(r))
        elif r.verdict == WARN:
            ET.SubElement(case, "skipped", {"message": _t("warning: " + r.message())})
        out = ET.SubElement(case, "system-out")
        out.text = _t(_details(r))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: CheckReport, path: str | Path, *, suite: str = "agtrace check") -> None:
    """Write the JUnit file, creating its directory; OSError is the caller's to report."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(junit_xml(report, suite=suite), encoding="utf-8")
