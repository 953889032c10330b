"""The human table for `kubectl waypoint skew`."""

from __future__ import annotations

from ..skew import SkewResult
from .safe import safe
from .text import Style, plural, table


def render_skew(result: SkewResult, style: Style, plan=None) -> str:
    lines = [style.bold("CONTROL PLANES")]
    if result.control_planes:
        lines += table(
            ["NAMESPACE", "REVISION", "VERSION", "TAGS", "READY", "DEPLOYMENT"],
            [[cp.namespace, cp.revision, cp.version.raw if cp.version else "unknown",
              ",".join(cp.tags) or "-", f"{cp.ready_replicas}/{cp.replicas}", cp.deployment]
             for cp in result.control_planes],
        )
    else:
        lines.append("none found")
    lines += ["", style.bold("DATA PLANE")]
    if result.components:
        lines += table(
            ["KIND", "NAMESPACE", "WORKLOAD", "PODS", "VERSION", "CONTROL PLANE", "SKEW", "STATUS"],
            [[c.kind, c.namespace, c.workload, str(len(c.pods)), c.version or "unknown",
              f"{c.control_plane_version or 'unknown'} ({c.control_plane.split('/', 1)[1]})" if c.control_plane else "unresolved",
              "-" if c.minor_skew is None else str(c.minor_skew), c.status]
             for c in result.components],
            painted={7: style},
        )
    else:
        lines.append("none found")
    notes = [c for c in result.components if c.status != "ok" or c.minor_skew]
    if notes:
        lines.append("")
        for c in notes:
            lines.append(f"{style.status(c.status.upper() if c.status != 'ok' else 'NOTE', c.status if c.status != 'ok' else 'warn')}  {safe(c.message)}")
    if plan is not None:
        lines += ["", *render_plan(plan, style)]
        lines += ["", f"result: {style.status(plan.result)} ({_plan_summary(plan)})"]
    else:
        lines += ["", f"result: {style.status(result.result)} ({result.summary})"]
    return "\n".join(lines) + "\n"


_LEVEL_STATUS = {"block": "fail", "warn": "warn", "ok": "pass"}


def render_plan(plan, style: Style) -> list[str]:
    """The upgrade to --target-version: each component's verdict there, the findings, the order of work."""
    lines = [style.bold(f"UPGRADE TO {plan.target}")]
    if plan.components:
        lines += table(
            ["KIND", "NAMESPACE", "WORKLOAD", "VERSION", "AT TARGET", "SKEW"],
            [[c.kind, c.namespace, c.workload, c.version or "unknown", j.status,
              "-" if j.minor_skew is None else str(j.minor_skew)] for c, j in plan.components],
            painted={4: style},
        )
    lines.append("")
    for finding in plan.findings:
        label = {"block": "BLOCK", "warn": "WARN", "ok": "OK"}[finding.level]
        lines.append(f"{style.status(label, _LEVEL_STATUS[finding.level])}  {safe(finding.subject)}: {safe(finding.message)}")
    lines += ["", style.bold("ORDER OF WORK")]
    lines += [f"{n}. {safe(step)}" for n, step in enumerate(plan.steps, 1)]
    return lines


def _plan_summary(plan) -> str:
    if plan.blockers:
        return f"the upgrade to {plan.target} is blocked by {plural(len(plan.blockers), 'finding')}"
    if plan.warnings:
        return f"the upgrade to {plan.target} can go ahead; read {plural(len(plan.warnings), 'warning')}"
    return f"the upgrade to {plan.target} can go ahead"
