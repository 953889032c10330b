"""A waypoint's Envoy stats as Prometheus text: how they are read and one parser for every reader.

Both readers of a waypoint's stats use this: the sync fallback (envoystats.py) and the split
telemetry (probe/telemetry.py). `pilot-agent request GET stats/prometheus` inside the waypoint's
`istio-proxy` container prints Envoy's admin `/stats/prometheus` (pilot-agent allows ports 15000,
15020, 15021 and 15004 there). The parser is ours, not prometheus_client's: that one imports the
whole client (170 ms and an HTTP server in the single executable) and reports a broken label as
"could not convert string to float"; this one names the line and what is wrong with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STATS_COMMAND = ["pilot-agent", "request", "GET", "stats/prometheus"]
PROXY_CONTAINER = "istio-proxy"

_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?[ \t]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]  # sorted (key, value) pairs
    value: float
    line: int


class MetricsError(ValueError):
    """A line that is not a Prometheus sample: its number, what is wrong and the offending text."""

    def __init__(self, line: int, problem: str, shown: str):
        super().__init__(f"line {line} {problem} ({shown!r})")
        self.line, self.problem, self.shown = line, problem, shown


def parse(text: str) -> list[Sample]:
    """Every sample of the text; a MetricsError for the first line that is not one (never skipped,
    so an error page or a cut stream is refused rather than read as "no metrics")."""
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _SAMPLE.fullmatch(stripped)
        if match is None:
            raise MetricsError(number, "is not Prometheus text", stripped[:80])
        try:
            value = float(match.group(3))
        except ValueError:
            raise MetricsError(number, "has no number", match.group(3)[:40]) from None
        samples.append(Sample(match.group(1), _labels(match.group(2) or "", number), value, number))
    return samples


def _labels(text: str, number: int) -> tuple[tuple[str, str], ...]:
    labels, at = {}, 0
    while at < len(text):
        match = _LABEL.match(text, at)
        if match is None:
            raise MetricsError(number, "has a malformed label", text[at:at + 60])
        labels[match.group(1)] = re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], match.group(2))
        at = match.end()
    return tuple(sorted(labels.items()))
