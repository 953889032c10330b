"""The human table for `kubectl waypoint skew`."""

from __future__ import annotations

from ..skew import SkewResult
from .text import Style, table


def render_skew(result: SkewResult, style: Style) -> str:
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
            lines.append(f"{style.status(c.status.upper() if c.status != 'ok' else 'NOTE', c.status if c.status != 'ok' else 'warn')}  {c.message}")
    lines += ["", f"result: {style.status(result.result)} ({result.summary})"]
    return "\n".join(lines) + "\n"
