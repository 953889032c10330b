"""The one sentence that ends every non-zero exit: what failed or could not be decided, and what to do.

Pure text from finished results; the commands print it (`commands.conclude`).
"""

from __future__ import annotations

from ..checks.hints import explain_command, hint_for
from ..errors import kubectl_style
from .safe import cut, safe
from .text import plural

SENTENCE_LIMIT = 300  # characters of a cluster-supplied message quoted in the sentence


def skew_sentence(result) -> str:
    """Why skew exits 1 or 4: how many workloads break the rule and the first, or what is unknown."""
    failed = [c for c in result.components if c.status in ("ahead", "too-old")]
    if failed:
        first = failed[0]
        verb = "breaks" if len(failed) == 1 else "break"
        return (f"{plural(len(failed), 'workload')} {verb} the n-1 version rule; the first, {first.kind} "
                f"{safe(first.namespace)}/{safe(first.workload)}: {cut(first.message, SENTENCE_LIMIT)}")
    unknown = [c for c in result.components if c.status == "unknown"]
    if unknown:
        first = unknown[0]
        return (f"the version skew of {plural(len(unknown), 'workload')} could not be decided; the first, "
                f"{first.kind} {safe(first.namespace)}/{safe(first.workload)}: {cut(first.message, SENTENCE_LIMIT)}")
    return safe(result.summary)


def probe_sentence(outcome) -> str:
    """Why probe exits 1 or 4: the verdict's first reason (it says what to change for an undecided run)."""
    verdict = outcome.verdict
    what = "failed" if verdict.result == "fail" else "could not decide"
    reason = cut(verdict.reasons[0], SENTENCE_LIMIT) if verdict.reasons else "see the report above"
    return f"the probe of {safe(outcome.url)} from pod {safe(outcome.client.pod)} {what}: {reason}"


def verify_sentence(run, namespace: str) -> str:
    """Why verify exits 1 or 4: how many checks failed (or were undecided), the first, what to do."""
    status = "fail" if run.result == "fail" else "inconclusive"
    bad = [r for r in run.results if r.status == status]
    if not bad:
        return f"verify -n {safe(namespace)} did not pass"
    first = bad[0]
    subject = "" if first.subject in ("-", "") else f" [{safe(first.subject)}]"
    checks = plural(len({r.id for r in bad}), "check")
    what = f"{checks} failed" if status == "fail" else f"{checks} could not be decided"
    return (f"{what} in namespace {safe(namespace)}; the first, {first.id}{subject}: "
            f"{kubectl_style(cut(first.message, SENTENCE_LIMIT))}; "
            f"next: {kubectl_style(safe(hint_for(first, namespace)))} (more: {explain_command(first.id)})")


def missing_namespace_sentence(result, target) -> str:
    """verify -n NOSUCH: the whole answer, instead of a report of checks skipped for it."""
    return (f"{cut(result.message, SENTENCE_LIMIT)} in context {safe(target.context or target.server)}; "
            "kubectl get namespaces lists them, pass the right one with -n")


def interrupted_sentence(partial, selected: int) -> str:
    return (f"interrupted (Ctrl-C) after {plural(len({r.id for r in partial.results}), 'check')} of {selected}; "
            "the report above is partial")


def plan_sentence(plan) -> str:
    """Why skew --target-version exits 1: how many findings block the upgrade, and the first."""
    first = plan.blockers[0]
    return (f"the upgrade to {safe(plan.target.raw)} is blocked by {plural(len(plan.blockers), 'finding')}; "
            f"the first, {safe(first.subject)}: {cut(first.message, SENTENCE_LIMIT)}")


def fleet_sentence(fleet) -> str:
    """Why `verify -A` exits 1 or 4: how many namespaces, and the first one's own sentence."""
    if not fleet.runs:
        return ("no namespace has a waypoint or the istio.io/use-waypoint label in this cluster; "
                "kubectl get gateways -A shows the Gateways this --context sees")
    status = fleet.result
    bad = [ns for ns, run in fleet.runs.items() if run.result == status]
    if not bad:
        return ""
    what = "failed" if status == "fail" else "could not be decided"
    return (f"{plural(len(bad), 'namespace')} of {len(fleet.runs)} {what}; the first, {safe(bad[0])}: "
            f"{verify_sentence(fleet.runs[bad[0]], bad[0])}")
