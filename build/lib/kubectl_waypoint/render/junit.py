"""`verify --junit-file`: one testcase per check result, for CI systems that read JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..checks.runner import VerifyRun


def junit_xml(run: VerifyRun, namespace: str) -> bytes:
    counts = run.summary()
    suite = ET.Element("testsuite", {
        "name": f"kubectl-waypoint verify -n {namespace}",
        "tests": str(len(run.results)),
        "failures": str(counts["fail"]),
        "errors": str(counts["inconclusive"]),
        "skipped": str(counts["skip"]),
    })
    for result in run.results:
        name = result.id if result.subject in ("-", "") else f"{result.id} [{result.subject}]"
        case = ET.SubElement(suite, "testcase", {"classname": f"verify.{result.spec.category}", "name": name})
        detail = "\n".join([result.message, *result.evidence, f"hint: {result.spec.hint}"])
        if result.status == "fail":
            ET.SubElement(case, "failure", {"message": result.message}).text = detail
        elif result.status == "inconclusive":
            ET.SubElement(case, "error", {"message": result.message}).text = detail
        elif result.status == "skip":
            ET.SubElement(case, "skipped", {"message": result.message})
        elif result.status == "warn":
            ET.SubElement(case, "system-out").text = f"warning: {detail}"
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"
