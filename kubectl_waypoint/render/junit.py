"""`verify --junit-file`: JUnit XML a CI server accepts, whatever the cluster wrote.

One <testsuite> per check category inside <testsuites>, one <testcase> per result. Test names
are stable from run to run: the check id and its subject, with a Deployment pod's generated
suffix replaced by its workload's name. Every string passes through the terminal-safe escaping,
which also removes every character XML 1.0 forbids, so the file is always well-formed. A run
that ended before judging anything (exit 3, Ctrl-C) still gets a file: a testsuite with the error.
No hostname is written.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..checks.catalogue import Catalogue
from ..checks.hints import hint_for
from ..checks.runner import CheckResult, VerifyRun
from .safe import LINE_LIMIT, cut, safe

# A Deployment's pod: NAME-<pod-template-hash>-<5 random>, both from Kubernetes' safe alphabet.
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
POD_SUFFIX = re.compile(f"-[{_SAFE_ALPHABET}]{{6,10}}-[{_SAFE_ALPHABET}]{{5}}$")


def stable_subject(subject: str) -> str:
    """The subject with a pod's generated name replaced by its Deployment's: `ns/waypoint`."""
    return POD_SUFFIX.sub("", subject)


def _text(lines) -> str:
    return "\n".join(cut(line, LINE_LIMIT) for line in lines)


def _case_names(results: list[CheckResult]) -> list[str]:
    """Stable, unique names: `check-id [ns/workload]`, numbered where one workload has several pods."""
    names, seen = [], {}
    for result in results:
        subject = stable_subject(result.subject)
        name = result.id if subject in ("-", "") else f"{result.id} [{subject}]"
        seen[name] = seen.get(name, 0) + 1
        names.append(safe(name) if seen[name] == 1 else f"{safe(name)} #{seen[name]}")
    return names


def _suite(parent: ET.Element, name: str, timestamp: str, cases: int, failures: int = 0, errors: int = 0,
           skipped: int = 0) -> ET.Element:
    return ET.SubElement(parent, "testsuite", {"name": name, "tests": str(cases), "failures": str(failures),
                                               "errors": str(errors), "skipped": str(skipped),
                                               "timestamp": timestamp})


def _document(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _timestamp(origin: dict) -> str:
    return origin["generatedAt"].rstrip("Z")  # the JUnit schema's xs:dateTime, UTC


def junit_xml(run: VerifyRun, catalogue: Catalogue, namespace: str, origin: dict,
              interrupted: str | None = None) -> bytes:
    """The results of a run; `interrupted` (why the run stopped early) adds an errored testcase."""
    root = ET.Element("testsuites", {"name": f"kubectl-waypoint verify -n {safe(namespace)}"})
    timestamp = _timestamp(origin)
    for category in catalogue.categories:
        results = [r for r in run.results if r.spec.category == category.id]
        if results:
            _cases(root, f"verify.{category.id}", timestamp, results, namespace)
    if interrupted:
        _error_suite(root, timestamp, interrupted)
    return _document(root)


def junit_fleet_xml(runs: dict[str, VerifyRun], origin: dict) -> bytes:
    """`verify -A`: one testsuite per namespace, its checks in catalogue order."""
    root = ET.Element("testsuites", {"name": "kubectl-waypoint verify -A"})
    timestamp = _timestamp(origin)
    for namespace, run in runs.items():
        _cases(root, f"verify.{safe(namespace)}", timestamp, run.results, namespace)
    return _document(root)


def _cases(root: ET.Element, suite_name: str, timestamp: str, results: list[CheckResult], namespace: str) -> None:
    statuses = [r.status for r in results]
    suite = _suite(root, suite_name, timestamp, len(results), statuses.count("fail"),
                   statuses.count("inconclusive"), statuses.count("skip"))
    for result, name in zip(results, _case_names(results)):
        case = ET.SubElement(suite, "testcase", {"classname": f"verify.{result.spec.category}", "name": name})
        message = cut(result.message, LINE_LIMIT)
        detail = _text([result.message, *result.evidence, f"hint: {hint_for(result, namespace)}"])
        if result.status == "fail":
            ET.SubElement(case, "failure", {"message": message}).text = detail
        elif result.status == "inconclusive":
            ET.SubElement(case, "error", {"message": message}).text = detail
        elif result.status == "skip":
            ET.SubElement(case, "skipped", {"message": message})
        elif result.status == "warn":
            ET.SubElement(case, "system-out").text = f"warning: {detail}"


def _error_suite(root: ET.Element, timestamp: str, message: str) -> None:
    suite = _suite(root, "verify", timestamp, 1, errors=1)
    case = ET.SubElement(suite, "testcase", {"classname": "verify", "name": "verify"})
    ET.SubElement(case, "error", {"message": cut(message, LINE_LIMIT)}).text = cut(message, LINE_LIMIT)


def junit_error_xml(namespace: str | None, origin: dict, message: str) -> bytes:
    """A run that could not start or finish: one testsuite with the error (exit 2, 3, 4, 130)."""
    root = ET.Element("testsuites", {"name": "kubectl-waypoint verify" + (f" -n {safe(namespace)}" if namespace else "")})
    _error_suite(root, _timestamp(origin), message)
    return _document(root)
