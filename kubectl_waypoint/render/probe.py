"""The human output of `kubectl waypoint probe`: the live progress line and the final report."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from ..probe.engine import ProbeOutcome, ProbeProgress
from .safe import BODY_LIMIT, LINE_LIMIT, cut, safe
from .text import Style, table


class ProgressPrinter:
    """Continuous mode's progress: one line redrawn with `\\r` on a terminal, else a line now and then.

    Plain lines come at most every `period` seconds (a tenth of the run, between 1s and 10s),
    so a CI log shows the run's course without thousands of lines.
    """

    def __init__(self, stream: TextIO, duration_s: float, clock: Callable[[], float] = time.monotonic):
        isatty = getattr(stream, "isatty", None)
        self.stream = stream
        self.live = bool(isatty and isatty())
        self.duration_s = duration_s
        self.period = min(10.0, max(1.0, duration_s / 10))
        self._clock = clock
        self._last_line = clock()
        self._last_reconnects = 0
        self._width = 0

    def __call__(self, progress: ProbeProgress) -> None:
        line = progress_line(progress, self.duration_s)
        if self.live:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self.stream.flush()
            return
        now = self._clock()
        if now - self._last_line >= self.period or progress.reconnects != self._last_reconnects:
            self._last_line, self._last_reconnects = now, progress.reconnects
            self.stream.write(line + "\n")
            self.stream.flush()

    def finish(self) -> None:
        """Clear the live line so the report starts on a clean line."""
        if self.live and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


def progress_line(progress: ProbeProgress, duration_s: float) -> str:
    outage = f"   OUTAGE {progress.outage_s:.1f}s" if progress.outage_s else ""
    reconnects = f"   reconnects {progress.reconnects}" if progress.reconnects else ""
    return (f"probe {progress.elapsed_s:.0f}s/{duration_s:g}s   sent {progress.sent}   ok {progress.ok}   "
            f"errors {progress.errors}{outage}{reconnects}")


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _level(confidence: float) -> str:
    return f"{confidence * 100:.10g}%"


def _split_lines(verdict, style: Style) -> list[str]:
    """Per backend the share, the interval its decision used and that decision; then the rates."""
    decision = verdict.decision
    rows = [[cut(b.name, BODY_LIMIT), str(b.count), _percent(b.share), f"{_percent(b.low)}-{_percent(b.high)} ({_level(b.confidence)})",
             _percent(b.expected), b.verdict] for b in decision.backends]
    rows += [[cut(name, BODY_LIMIT), str(n), "-", "-", "-", "-"] for name, n in verdict.backends.items()
             if name not in {b.name for b in decision.backends}]
    lines = [f"split: {decision.test} test, tolerance {decision.tolerance:g}, who served measured by "
             f"{verdict.measured_by}",
             *table(["BACKEND", "COUNT", "SHARE", "INTERVAL", "EXPECTED", "DECISION"], rows)]
    availability, unmatched = verdict.availability_decision, verdict.unmatched_decision
    lines.append(f"availability {_percent(1 - availability.rate)} ({availability.bad} failed of {availability.total}), "
                 f"at most {_percent(1 - availability.bound)} at {_level(availability.confidence)}, "
                 f"{_percent(1 - availability.limit)} required: {availability.verdict}")
    lines.append(f"unmatched {_percent(unmatched.rate)} ({unmatched.bad} of {unmatched.total}), at least "
                 f"{_percent(unmatched.bound)} at {_level(unmatched.confidence)}, {_percent(unmatched.limit)} "
                 f"allowed: {unmatched.verdict}")
    return lines


def render_probe(outcome: ProbeOutcome, style: Style) -> str:
    verdict, client = outcome.verdict, outcome.client
    lines = [
        f"{style.bold('CLIENT')}   pod {safe(client.namespace)}/{safe(client.pod)}, container "
        f"{safe(client.container)}, identity {safe(client.identity)}" + ("" if client.enrolled else " (not in the mesh)"),
        f"{style.bold('TARGET')}   {safe(outcome.method)} {safe(outcome.url)}",
    ]
    answered = verdict.requests - verdict.lost
    run = f"{verdict.requests} sent, {answered} with a result, {verdict.lost} lost"
    if verdict.reused_connections:
        run += f", {verdict.reused_connections} on a reused connection"
    if outcome.duration_s is not None:
        run += f"; continuous: {outcome.duration_s:g}s, one every {outcome.interval_s:g}s"
    if outcome.reconnects:
        run += f"; exec stream re-established {outcome.reconnects} time{'s' if outcome.reconnects > 1 else ''}"
    if outcome.interrupted:
        run += "; interrupted (Ctrl-C)"
    lines.append(f"{style.bold('REQUESTS')} {run}")
    for warning in client.warnings:
        lines.append(f"{style.status('WARNING', 'warn')}  {cut(warning, LINE_LIMIT)}")

    if verdict.decision is not None:
        lines += ["", *_split_lines(verdict, style)]
    elif verdict.backends is not None:
        lines += ["", *table(["BACKEND", "COUNT"], [[cut(name, BODY_LIMIT), str(n)] for name, n in verdict.backends.items()])]
    lines += ["", *table(["STATUS", "COUNT"], [[status, str(n)] for status, n in verdict.statuses.items()])]
    if verdict.latency is not None:
        latency = verdict.latency
        lines.append(f"latency  p50 {latency.p50_ms:.1f}ms   p90 {latency.p90_ms:.1f}ms   "
                     f"p99 {latency.p99_ms:.1f}ms   max {latency.max_ms:.1f}ms")
    if verdict.availability is not None:
        lines.append(f"availability {_percent(verdict.availability)}   longest outage "
                     f"{verdict.longest_outage_s:.1f}s")
    for note in outcome.notes:
        lines.append(f"note: {note}")
    for said in outcome.curl_errors:
        lines.append(f"curl said: {cut(said, BODY_LIMIT)}")
    lines += ["", f"result: {style.status(verdict.result)}"]
    lines += [f"  {cut(reason, LINE_LIMIT)}" for reason in verdict.reasons]
    return "\n".join(lines) + "\n"
