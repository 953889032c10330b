"""Human output of `kubectl waypoint verify`: results grouped by category, like `linkerd check`."""

from __future__ import annotations

import sys
from typing import TextIO

from ..checks.catalogue import Catalogue
from ..checks.hints import explain_command, hint_for
from ..checks.runner import CheckResult, VerifyRun, worst
from .safe import LINE_LIMIT, cut, safe
from .text import Style, plural, table

GLYPHS = {"pass": "√", "warn": "‼", "fail": "×", "skip": "~", "inconclusive": "?"}
ASCII_GLYPHS = {"pass": "[ok]", "warn": "[warn]", "fail": "[FAIL]", "skip": "[skip]", "inconclusive": "[??]"}
QUIET_SUBJECTS = {"-", ""}


def glyphs_for(stream: TextIO) -> dict[str, str]:
    """Unicode glyphs where the terminal's encoding can show them, ASCII elsewhere."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "".join(GLYPHS.values()).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return ASCII_GLYPHS
    return GLYPHS


def _line(result: CheckResult, namespace: str, glyphs: dict[str, str], style: Style) -> list[str]:
    subject = "" if result.subject in QUIET_SUBJECTS else f" [{safe(result.subject)}]"
    head = f"{style.status(glyphs[result.status], result.status)} {result.spec.title}{subject}"
    if result.status == "pass":
        return [head]
    lines = [head, f"    {cut(result.message, LINE_LIMIT)}"]
    lines += [f"      {cut(line, LINE_LIMIT)}" for line in result.evidence]
    if result.status in ("warn", "fail", "inconclusive"):
        lines.append(f"    hint: {safe(hint_for(result, namespace))}")
        lines.append(f"    see: {explain_command(result.id)}")
    return lines


def render_verify(run: VerifyRun, catalogue: Catalogue, namespace: str, style: Style, *, short: bool = False,
                  stream: TextIO = sys.stdout, interrupted: bool = False) -> str:
    glyphs = glyphs_for(stream)
    lines: list[str] = []
    for category in catalogue.categories:
        results = [r for r in run.results if r.spec.category == category.id]
        if short:
            results = [r for r in results if r.status in ("warn", "fail", "inconclusive")]
        if not results:
            continue
        lines += [style.bold(category.title), "-" * len(category.title)]
        for result in results:
            lines += _line(result, namespace, glyphs, style)
        lines.append("")
    counts = run.summary()
    parts = [f"{counts[s]} {label}" if label else plural(counts[s], "warning")
             for s, label in (("fail", "failed"), ("inconclusive", "inconclusive"), ("warn", ""),
                              ("pass", "passed"), ("skip", "skipped")) if counts[s]]
    retried = f" after {run.attempts} attempts" if run.attempts > 1 else ""
    stopped = " - interrupted, partial report" if interrupted else ""
    lines.append(f"verify -n {safe(namespace)}: {style.status(run.result)} ({', '.join(parts) or 'no checks'})"
                 f"{retried}{stopped}")
    return "\n".join(lines) + "\n"


def render_fleet(runs: dict, waypoints: dict[str, int], style: Style) -> str:
    """`verify -A`: one row per namespace (its failing or undecided checks named), then the total."""
    rows = []
    for namespace, run in runs.items():
        bad = sorted({r.id for r in run.results if r.status in ("fail", "inconclusive")})
        rows.append([safe(namespace), str(waypoints.get(namespace, 0)), run.result, ", ".join(bad) or "-"])
    lines = table(["NAMESPACE", "WAYPOINTS", "RESULT", "FAILING OR UNDECIDED CHECKS"], rows, painted={2: style})
    results = [run.result for run in runs.values()]
    counts = ", ".join(f"{results.count(s)} {s}" for s in ("fail", "inconclusive", "warn", "pass") if s in results)
    overall = worst(results) if results else "inconclusive"
    lines += ["", f"verify -A: {style.status(overall)} ({plural(len(runs), 'namespace')}: {counts or 'none found'})"]
    return "\n".join(lines) + "\n"
