"""`kubectl waypoint watch -o table`: a line per event as it comes, and the closing summary.

Names and messages come from the cluster: every one is made terminal-safe (no control sequences).
"""

from __future__ import annotations

from .safe import safe as printable
from .text import Style, table


def event_line(seconds: float, message: str) -> str:
    return f"{seconds:7.1f}s  {printable(message)}"


def render_watch_summary(doc: dict, style: Style = Style()) -> str:
    lines = ["", f"Result: {style.status(doc['result'])} - {printable(doc['reason'])}"]
    rows = [[printable(c["name"]), printable(", ".join(f"{v} ({n})" for v, n in sorted(c["versions"].items())) or "-"),
             "rolling" if c["rolling"] else "done"] for c in doc["components"]]
    if rows:
        lines += ["", *table(["COMPONENT", "READY PODS BY VERSION", "ROLLOUT"], rows)]
    if doc["outages"]:
        rows = [[printable(o["route"]), f"{o['start']:.1f}s", "-" if o["end"] is None else f"{o['end']:.1f}s",
                 f"{o['durationSeconds']:.1f}s", str(o["failedRequests"]), printable(", ".join(o["rolling"]) or "-")]
                for o in doc["outages"]]
        lines += ["", *table(["OUTAGE ON ROUTE", "START", "END", "LENGTH", "FAILED", "ROLLING AT THE TIME"], rows)]
    elif doc["requests"]:
        lines += ["", f"No failed request ({sum(doc['requests'].values())} sent)."]
    if doc["pending"] and doc["result"] != "pass":
        lines += ["", "Not finished:", *(f"  - {printable(p)}" for p in doc["pending"])]
    final = doc.get("finalVerify")
    if final:
        summary = final.get("summary") or {}
        counts = ", ".join(f"{n} {k}" for k, n in summary.items() if n)
        lines += ["", f"Final verify: {style.status(final['result'])} ({counts})"]
        lines += [f"  {c['status']:<12} {c['id']}: {printable(c['message'])}" for c in final.get("checks", [])
                  if c["status"] in ("fail", "inconclusive", "warn")]
    return "\n".join(lines) + "\n"
