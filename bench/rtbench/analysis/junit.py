"""JUnit XML for CI systems: one test case per check, a failure carries observed vs limit.

CI servers (GitHub Actions reporters, GitLab, Jenkins) all read this dialect: ``testsuites``
holding one ``testsuite`` per group of checks (run, budgets, baseline), in the order given.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from .gate import Verdict


def junit_xml(verdicts: Sequence[Verdict], run_id: str, timestamp: str = "") -> str:
    """The XML document (UTF-8 text) for ``verdicts``, grouped by ``Verdict.group``."""
    root = ET.Element("testsuites", name=f"rtbench {run_id}", tests=str(len(verdicts)),
                      failures=str(sum(not v.passed for v in verdicts)))
    groups: dict[str, list[Verdict]] = {}   # in the order their first check comes
    for v in verdicts:
        groups.setdefault(v.group, []).append(v)
    for group, cases in groups.items():
        suite = ET.SubElement(root, "testsuite", name=f"rtbench.{group}", tests=str(len(cases)),
                              failures=str(sum(not v.passed for v in cases)), errors="0",
                              skipped="0", time="0", timestamp=timestamp)
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="run_id", value=run_id)
        for v in cases:
            case = ET.SubElement(suite, "testcase", classname=f"rtbench.{group}", name=v.name,
                                 time="0")
            if v.passed:
                ET.SubElement(case, "system-out").text = v.message
            else:
                failure = ET.SubElement(case, "failure", type=group,
                                        message=f"observed {v.observed_text}, limit {v.limit}")
                failure.text = v.message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
