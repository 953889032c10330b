"""`watch --report FILE.html`: one self-contained page with an SVG timeline of the upgrade.

No scripts, external styles or fonts: the file opens anywhere, offline, and can be attached to a
ticket. Every string from the cluster goes through `escape` (names and messages are untrusted).
"""

from __future__ import annotations

from html import escape

from ..timeline import UpgradeTimeline

_WIDTH = 1100
_LABEL_W = 260
_LANE_H = 26
_GAP = 8
_PALETTE = ("#8e9aaf", "#1c7ed6", "#7048e8", "#f08c00", "#ae3ec9", "#0b7285", "#e8590c")  # no red or green: those are requests
_OK, _FAIL = "#2f9e44", "#e03131"
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#212529;background:#fff}
h1{font-size:20px;margin:0 0 4px}
.verdict{font-size:16px;padding:8px 12px;border-radius:6px;display:inline-block;margin:8px 0}
.pass{background:#d3f9d8}.fail{background:#ffe3e3}.inconclusive{background:#fff3bf}
table{border-collapse:collapse;margin-top:8px;font-size:13px}
td,th{border-bottom:1px solid #dee2e6;padding:3px 10px 3px 0;text-align:left;vertical-align:top}
.legend span{display:inline-block;margin-right:16px;font-size:13px}
.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
svg text{font-size:12px;font-family:system-ui,sans-serif}
"""


def watch_html(doc: dict, model: UpgradeTimeline) -> str:
    duration = max(float(doc["durationSeconds"]), 1.0)
    versions = sorted({v for c in model.components.values() for _, counts in c.lane for v in counts},
                      key=_version_key)
    colours = {v: _PALETTE[i % len(_PALETTE)] for i, v in enumerate(versions)}
    svg = _timeline_svg(doc, model, duration, colours)
    legend = "".join(f'<span><span class="swatch" style="background:{colours[v]}"></span>{escape(v)}</span>'
                     for v in versions)
    legend += (f'<span><span class="swatch" style="background:{_OK}"></span>requests answered</span>'
               f'<span><span class="swatch" style="background:{_FAIL}"></span>requests failed</span>'
               '<span><span class="swatch" style="background:#e03131;opacity:.18"></span>outage</span>')
    target = escape(doc["targetVersion"] or "one version for all (no --target-version)")
    rows = "".join(f"<tr><td>{e['time']:.1f}s</td><td>{escape(e['kind'])}</td><td>{escape(e['message'])}</td></tr>"
                   for e in doc["events"])
    outages = "".join(
        f"<tr><td>{escape(o['route'])}</td><td>{o['start']:.1f}s</td>"
        f"<td>{'-' if o['end'] is None else format(o['end'], '.1f') + 's'}</td><td>{o['durationSeconds']:.1f}s</td>"
        f"<td>{o['failedRequests']}</td><td>{escape(', '.join(o['rolling']) or '-')}</td></tr>" for o in doc["outages"])
    final = doc.get("finalVerify")
    verify = "<p>No final verify: the upgrade did not finish while watched.</p>"
    if final:
        checks = "".join(f"<tr><td>{escape(c['status'])}</td><td>{escape(c['id'])}</td><td>{escape(c['subject'])}</td>"
                         f"<td>{escape(c['message'])}</td></tr>" for c in final.get("checks", []))
        verify = (f"<p>Final verify: <b>{escape(final['result'])}</b></p><table><tr><th>Status</th><th>Check</th>"
                  f"<th>Subject</th><th>Message</th></tr>{checks}</table>")
    result = doc["result"] if doc["result"] in ("pass", "fail", "inconclusive") else "inconclusive"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>kubectl waypoint watch: {escape(doc['namespace'])}</title><style>{_STYLE}</style></head>
<body>
<h1>Upgrade watched from namespace {escape(doc['namespace'])}</h1>
<div>Target: {target} &middot; started {escape(doc['startedAt'])} &middot; watched {duration:.1f}s</div>
<div class="verdict {result}" id="verdict">{escape(doc['result'].upper())}: {escape(doc['reason'])}</div>
<div class="legend">{legend}</div>
{svg}
<h2>Outages</h2>
{f'<table><tr><th>Route</th><th>Start</th><th>End</th><th>Length</th><th>Failed requests</th><th>Rolling at the time</th></tr>{outages}</table>' if outages else '<p>No failed request.</p>'}
<h2>Events</h2>
<table><tr><th>Time</th><th>Kind</th><th>What happened</th></tr>{rows}</table>
<h2>Final verify</h2>
{verify}
</body></html>
"""


def _timeline_svg(doc: dict, model: UpgradeTimeline, duration: float, colours: dict[str, str]) -> str:
    span = _WIDTH - _LABEL_W - 20

    def x(seconds: float) -> float:
        return round(_LABEL_W + max(0.0, min(seconds, duration)) / duration * span, 1)

    parts: list[str] = []
    y = 30
    for name, component in sorted(model.components.items()):
        parts.append(f'<text x="8" y="{y + 17}">{escape(name)}</text>')
        lane = component.lane
        for index, (start, counts) in enumerate(lane):
            end = lane[index + 1][0] if index + 1 < len(lane) else duration
            total = sum(counts.values())
            offset = 0.0
            for version in sorted(counts, key=_version_key):
                height = _LANE_H * counts[version] / total if total else 0
                parts.append(f'<rect x="{x(start)}" y="{round(y + offset, 1)}" width="{max(x(end) - x(start), 0.5)}" '
                             f'height="{round(height, 1)}" fill="{colours.get(version, "#adb5bd")}">'
                             f'<title>{escape(name)}: {escape(version)} on {counts[version]}</title></rect>')
                offset += height
        y += _LANE_H + _GAP
    for route, runs in sorted(model.routes.items()):
        parts.append(f'<text x="8" y="{y + 17}">{escape(_short(route))}</text>')
        for start, end, ok, count in runs:
            parts.append(f'<rect x="{x(start)}" y="{y + 4}" width="{max(x(end) - x(start), 2)}" height="{_LANE_H - 8}" '
                         f'fill="{_OK if ok else _FAIL}"><title>{count} request(s) '
                         f'{"answered" if ok else "failed"}</title></rect>')
        y += _LANE_H + _GAP
    for outage in doc["outages"]:
        end = outage["end"] if outage["end"] is not None else duration
        parts.append(f'<rect class="outage" x="{x(outage["start"])}" y="20" width="{max(x(end) - x(outage["start"]), 2)}" '
                     f'height="{y - 20}" fill="#e03131" fill-opacity="0.18"><title>outage on {escape(outage["route"])}: '
                     f'{outage["durationSeconds"]:.1f}s</title></rect>')
    ticks = _ticks(duration)
    for tick in ticks:
        parts.append(f'<line x1="{x(tick)}" y1="20" x2="{x(tick)}" y2="{y}" stroke="#dee2e6"/>'
                     f'<text x="{x(tick)}" y="14" text-anchor="middle">{tick:g}s</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{y + 10}" role="img" '
            f'aria-label="upgrade timeline">{"".join(parts)}</svg>')


def _ticks(duration: float) -> list[float]:
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200) if duration / s <= 12),
                duration / 10)
    return [i * step for i in range(int(duration // step) + 1)]


def _short(route: str) -> str:
    """At most 38 characters, keeping both ends: "(allowed)" and "(denied principal)" must stay apart."""
    return route if len(route) <= 38 else route[:18] + "\u2026" + route[-19:]


def _version_key(version: str) -> tuple:
    from ..versions import parse_version

    parsed = parse_version(version)
    return (0, parsed.sort_key()) if parsed else (1, (version,))
