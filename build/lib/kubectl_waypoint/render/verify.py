"""Human output of `kubectl waypoint verify`: results grouped by category, like `linkerd check`."""

from __future__ import annotations

import sys
from typing import TextIO

from ..checks.catalogue import Catalogue
from ..checks.runner import CheckResult, VerifyRun
from .text import Style

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


def _line(result: CheckResult, glyphs: dict[str, str], style: Style) -> list[str]:
    subject = "" if result.subject in QUIET_SUBJECTS else f" [{result.subject}]"
    head = f"{style.status(glyphs[result.status], result.status)} {result.spec.title}{subject}"
    if result.status == "pass":
        return [head]
    lines = [head, f"    {result.message}"]
    lines += [f"      {line}" for line in result.evidence]
    if result.status in ("warn", "fail", "inconclusive"):
        lines.append(f"    hint: {result.spec.hint}")
        lines.append(f"    see: {result.spec.docs}")
    return lines


def render_verify(run: VerifyRun, catalogue: Catalogue, namespace: str, style: Style, *, short: bool = False,
                  stream: TextIO = sys.stdout) -> str:
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
            lines += _line(result, glyphs, style)
        lines.append("")
    counts = run.summary()
    parts = [f"{counts[s]} {label}" for s, label in (("fail", "failed"), ("inconclusive", "inconclusive"),
                                                      ("warn", "warnings"), ("pass", "passed"), ("skip", "skipped"))
             if counts[s]]
    retried = f" after {run.attempts} attempts" if run.attempts > 1 else ""
    lines.append(f"verify -n {namespace}: {style.status(run.result)} ({', '.join(parts) or 'no checks'}){retried}")
    return "\n".join(lines) + "\n"
