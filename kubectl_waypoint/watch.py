"""`kubectl waypoint watch`: follow a live upgrade, probe the namespace's routes, verify at the end.

Three things run at once: the informers (kube/watch.py) follow every mesh component, one prober
thread per route sends a steady trickle of requests through the mesh (probe/engine.py,
continuous mode, in short sessions so it can stop promptly), and this loop feeds both into the
pure timeline (timeline.py), prints each event as it happens, and ends when the upgrade is
complete, at --timeout, or on Ctrl-C.
"""

from __future__ import annotations

import datetime
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import logs
from .errors import ClusterUnavailable, ExitCode, Inconclusive, WaypointError
from .kube import resources as r
from .kube.watch import Follower, Source
from .render.watch import event_line
from .timeline import UpgradeTimeline

log = logs.getLogger(__name__)

PROBE_SESSION_S = 15.0  # one exec of curl covers this much of the watch (then the next one starts)
REQUEST_TIMEOUT_S = 5.0  # as verify's probes: a slow answer under load is not an outage
CLIENT_TRIES = 3  # client pods to try for a route before giving up on probing it
_TICK_S = 0.2


def mesh_sources(namespace: str) -> list[Source]:
    """What to follow: the control plane and node agents everywhere, the namespace's waypoints."""
    waypoint = "gateway.istio.io/managed"
    return [
        Source(r.PODS, None, "app in (istiod,ztunnel)"),
        Source(r.PODS, None, "k8s-app=istio-cni-node"),
        Source(r.PODS, namespace, waypoint),
        Source(r.DEPLOYMENTS, None, "app=istiod"),
        Source(r.DEPLOYMENTS, namespace, waypoint),
        Source(r.DAEMONSETS, None, "app.kubernetes.io/name=ztunnel"),  # the rendered DaemonSet; its pods: app=ztunnel
        Source(r.DAEMONSETS, None, "k8s-app=istio-cni-node"),
        Source(r.GATEWAYS, namespace),
    ]


def sail_sources() -> list[Source]:
    """The Sail operator's CRs, where it is installed (elsewhere each ends after one 404 list)."""
    return [Source(resource) for resource in (r.SAIL_ISTIOS, r.SAIL_REVISIONS, r.SAIL_CNIS, r.SAIL_ZTUNNELS)]


@dataclass(frozen=True)
class WatchSettings:
    namespace: str
    target: object | None  # IstioVersion
    timeout_s: float
    max_outage_s: float | None
    interval_s: float


@dataclass(frozen=True)
class RouteTarget:
    """One steady request stream: what is sent, from where, and what each answer must be."""

    name: str  # as shown: "HTTPRoute reviews -> Service reviews"
    url: str
    clients: list  # ClientPod, best first
    method: str = "GET"
    denied: bool = False  # the policy must refuse it (a refusal at L7 or L4 is as expected)


def probe_targets(cluster, namespace: str, options) -> tuple[list[RouteTarget], list[str]]:
    """The routes and policies verify would probe, each with clients chosen as verify does; and why some are not.

    Per ALLOW policy two streams: from an allowed principal (must be answered) and, when the policy
    names its principals, from another one (must be refused).
    """
    from .checks.clients import first_with_curl, no_client_message
    from .checks.facts import VerifyFacts
    from .checks.traffic import policy_plans, route_plans

    facts = VerifyFacts(cluster, namespace, options)
    targets, skipped = [], []

    def add(subject: str, url: str | None, clients: list, **how) -> None:
        usable, problems = first_with_curl(facts.curl, clients, CLIENT_TRIES)  # as verify chooses them
        if usable:
            targets.append(RouteTarget(subject, url, usable, **how))
        else:
            skipped.append(f"{subject}: {no_client_message('ready, mesh-enrolled client pod', namespace, problems)}")

    for plan in route_plans(facts):
        if plan.skip or not plan.url:
            skipped.append(f"{plan.subject}: {plan.skip}")
            continue
        add(plan.subject, plan.url, [c for c in facts.client_candidates if not _selected(c, plan.exclude_selectors)])
    for plan in policy_plans(facts):
        if plan.skip or not plan.url:
            skipped.append(f"{plan.subject}: {plan.skip}")
            continue
        method = plan.methods[0] if plan.methods else "GET"
        outside = [c for c in facts.client_candidates if not _selected(c, [plan.target_selector])]
        add(f"{plan.subject} (allowed)", plan.url, [c for c in outside if _allowed(plan, c)], method=method)
        if (None, None) not in plan.allowed_principals:
            add(f"{plan.subject} (denied principal)", plan.url, [c for c in outside if not _allowed(plan, c)],
                method=method, denied=True)
    return targets, skipped


def _selected(client, selectors: list[dict]) -> bool:
    return any(s and all(client.labels.get(k) == v for k, v in s.items()) for s in selectors)


def _allowed(plan, client) -> bool:
    return any((ns is None or ns == client.namespace) and (sa is None or sa == client.service_account)
               for ns, sa in plan.allowed_principals)


class ConfirmedResults:
    """Each request's outcome, from the probe engine's running counts of answers as expected and not.

    curl reports a failed transfer on stderr before its result, and the engine counts it as an
    error until the result arrives; on a stream that must be refused, that result is as expected
    and the error count goes down again. So a failure is passed on only once every report for
    SETTLE_S seconds has counted it (with the time of the first of those reports); successes at once.
    """

    SETTLE_S = 0.5  # a result follows curl's error line within milliseconds

    def __init__(self) -> None:
        self.ok = self.failed = 0
        self.reports: deque[tuple[float, int]] = deque()  # (time, errors) of recent reports

    def update(self, ok: int, errors: int, now: float) -> list[tuple[bool, float]]:
        self.reports.append((now, errors))
        while len(self.reports) > 1 and self.reports[1][0] <= now - self.SETTLE_S:
            self.reports.popleft()  # keep one report at least SETTLE_S old, and all since
        outcomes: list[tuple[bool, float]] = []
        since, _ = self.reports[0]
        if since <= now - self.SETTLE_S:
            confirmed = min(e for _, e in self.reports)
            outcomes += [(False, since)] * max(0, confirmed - self.failed)
            self.failed = max(self.failed, confirmed)
        outcomes += [(True, now)] * max(0, ok - self.ok)
        self.ok = ok
        return outcomes


class _Stopped(Exception):
    """Raised from the probe's progress callback to end a session when the watch is over."""


class RouteProber:
    """One thread per route: continuous probe sessions; every request's outcome onto `results`."""

    def __init__(self, cluster, target: RouteTarget, interval_s: float, results: queue.Queue,
                 clock: Callable[[], float]):
        self.cluster, self.target, self.interval_s = cluster, target, interval_s
        self.results, self.clock = results, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"probe-{target.name}")

    def start(self) -> RouteProber:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        from .probe.engine import run_probe
        from .probe.expectations import Expectation

        clients = list(self.target.clients)
        while clients and not self._stop.is_set():
            client = clients[0]
            counts = ConfirmedResults()

            def progress(p, counts=counts) -> None:
                if self._stop.is_set():
                    raise _Stopped()  # out of run_probe at the next result; its session closes the exec
                for ok, at in counts.update(p.ok, p.errors, self.clock()):
                    self.results.put(("request", self.target.name, ok, at))

            try:
                expectation = Expectation.denial("any") if self.target.denied else Expectation.answered()
                run_probe(self.cluster, client, self.target.url, expectation, method=self.target.method,
                          duration_s=max(PROBE_SESSION_S, self.interval_s), interval_s=self.interval_s,
                          timeout_s=REQUEST_TIMEOUT_S, progress=progress)
            except _Stopped:
                return
            except (Inconclusive, ClusterUnavailable) as exc:  # the client pod went away: choose another
                clients.pop(0)
                what = f"{client.namespace}/{client.pod}"
                nxt = f"; probing from {clients[0].namespace}/{clients[0].pod} now" if clients else \
                    "; no other client left, this route is no longer probed"
                self.results.put(("gap", f"probe client {what} for {self.target.name} failed ({exc.message}){nxt}",
                                  self.clock()))
            except WaypointError as exc:
                self.results.put(("gap", f"probing {self.target.name} stopped: {exc.message}", self.clock()))
                return


class WatchRun:
    """The loop: events in, lines out; the model decides when it is over."""

    def __init__(self, cluster, settings: WatchSettings, follower: Follower, probers: list[RouteProber],
                 results: queue.Queue, emit: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.cluster, self.settings, self.follower, self.probers = cluster, settings, follower, probers
        self.results, self.emit, self.clock = results, emit, clock
        self.started = clock()
        self.model = UpgradeTimeline(settings.target, datetime.datetime.now(datetime.timezone.utc))
        self.ended = ""  # complete | timeout | interrupted
        self.settle_s = ConfirmedResults.SETTLE_S + 2 * settings.interval_s if probers else 0.0

    def elapsed(self) -> float:
        return self.clock() - self.started

    def run(self) -> str:
        complete_since = None
        try:
            while True:
                event = self.follower.next(_TICK_S)
                if event is not None:
                    self._follow(event)
                self._drain_results()
                if self.follower.synced() and self.follower.queue.empty() and not self.model.pending():
                    # the last requests' failures are confirmed a moment later: done once it stays done
                    complete_since = complete_since if complete_since is not None else self.elapsed()
                    if self.elapsed() - complete_since >= self.settle_s:
                        self.ended = "complete"
                        break
                else:
                    complete_since = None
                if self.elapsed() >= self.settings.timeout_s:
                    self.ended = "timeout"
                    break
        except KeyboardInterrupt:
            self.ended = "interrupted"
        finally:
            self.follower.stop()
            for prober in self.probers:
                prober.stop()
        self._drain_results()
        return self.ended

    def _follow(self, event) -> None:
        at = self.elapsed()
        if event.type == "ERROR":
            raise ClusterUnavailable(f"cannot follow {event.source.describe()}: {event.message}")
        if event.type == "GAP":
            lines = self.model.gap(event.message, at)
        else:
            lines = self.model.observe(event.type, event.source.resource.plural, event.obj or {}, at, event.initial)
        for line in lines:
            self.emit(event_line(line.time, line.message))

    def _drain_results(self) -> None:
        while True:
            try:
                item = self.results.get_nowait()
            except queue.Empty:
                return
            if item[0] == "request":
                _, route, ok, at = item
                lines = self.model.request(route, ok, at - self.started)
            else:
                lines = self.model.gap(item[1], item[2] - self.started)
            for line in lines:
                self.emit(event_line(line.time, line.message))


# ------------------------------------------------------------------------------------ the command

def run_watch(flags, *, settings_for: Callable[[object], WatchSettings], output: str, report_file: str | None,
              no_colour: bool, verify_options) -> int:
    """Connect, follow, probe, verify at the end; print and return the exit code."""
    import sys

    import click

    from .commands import connect, warn_permissions

    cluster = connect(flags)
    settings = settings_for(cluster)
    report_out = _open_report(report_file)
    warn_permissions(cluster, "watch", settings.namespace)  # every missing core permission at once, exit 3
    live = output == "table"

    def emit(text: str) -> None:
        if live:
            click.echo(text)
        elif sys.stderr.isatty():
            click.echo(text, err=True)

    targets, skipped = probe_targets(cluster, settings.namespace, verify_options)
    results: queue.Queue = queue.Queue()
    watch_clock = time.monotonic
    follower = Follower(cluster, mesh_sources(settings.namespace) + sail_sources()).start()
    probers = [RouteProber(cluster, t, settings.interval_s, results, watch_clock).start() for t in targets]
    if live:
        target = f" to {settings.target}" if settings.target else ""
        click.echo(f"Watching the upgrade{target} from namespace {settings.namespace}: "
                   f"{len(targets)} request stream(s), one request every {settings.interval_s:g}s each"
                   + "".join(f"\n  not probed: {s}" for s in skipped))
    loop = WatchRun(cluster, settings, follower, probers, results, emit, watch_clock)
    ended = loop.run()
    final = None
    if ended == "complete":
        try:
            final = final_verify(cluster, settings.namespace, verify_options)
        except KeyboardInterrupt:  # Ctrl-C during the final verify: the report so far, still
            ended = "interrupted"
    result, reason, code = verdict(loop.model, ended, final, settings, loop.elapsed())
    document = loop.model.report(settings.namespace, result, reason, loop.elapsed(), final, settings.max_outage_s)
    if report_out is not None:
        from .render.html import watch_html

        with report_out:
            report_out.write(watch_html(document, loop.model).encode("utf-8"))
    if live:
        from .render.text import style_for
        from .render.watch import render_watch_summary

        click.echo(render_watch_summary(document, style_for(sys.stdout, no_colour)), nl=False)
    else:
        from .render.structured import dump

        click.echo(dump(document, output), nl=False)
    return code


def _open_report(path: str | None):
    if not path:
        return None
    from .commands import _open_for_writing

    return _open_for_writing(path, "--report")


def final_verify(cluster, namespace: str, options) -> dict:
    """The full verify suite, as `verify -n NS` runs it, as its VerifyReport."""
    from .checks.catalogue import load_catalogue
    from .checks.facts import VerifyFacts
    from .checks.judges import JUDGES
    from .checks.runner import run_until
    from .report import verify_report

    catalogue = load_catalogue()
    run = run_until(catalogue, catalogue.select([], []), lambda: VerifyFacts(cluster, namespace, options), JUDGES, 0)
    return verify_report(run, namespace)


def verdict(model: UpgradeTimeline, ended: str, final: dict | None, settings: WatchSettings,
            now: float) -> tuple[str, str, int]:
    """(result, reason, exit code): 0 done and healthy, 1 verify failed or an outage too long, 4 unfinished."""
    longest = model.longest_outage(now)
    too_long = settings.max_outage_s is not None and longest > settings.max_outage_s
    if too_long:
        return ("fail", f"the longest outage lasted {longest:.1f}s, more than --max-outage "
                        f"{settings.max_outage_s:g}s", ExitCode.FAILED)
    if ended != "complete":
        left = "; ".join(model.pending()) or "the final verify"
        why = "interrupted" if ended == "interrupted" else f"--timeout {settings.timeout_s:g}s reached"
        return "inconclusive", f"{why} before the upgrade finished: {left}", ExitCode.INCONCLUSIVE
    verify_result = (final or {}).get("result", "inconclusive")
    if verify_result == "fail":
        return "fail", "the upgrade finished but the final verify failed", ExitCode.FAILED
    if verify_result == "inconclusive":
        return "inconclusive", "the upgrade finished but the final verify was inconclusive", ExitCode.INCONCLUSIVE
    outages = f"; longest outage {longest:.1f}s" if model.outages else "; no failed request"
    return "pass", f"the upgrade finished and the final verify passed{outages}", ExitCode.OK


def watch_settings(*, target_version: str | None, timeout: str, max_outage: str | None, interval: str):
    """Check every flag before anything touches the cluster; the namespace comes from the kubeconfig."""
    from .commands import build_verify_options
    from .errors import BadInput
    from .kube.config import parse_duration
    from .plan import parse_target

    target = parse_target(target_version) if target_version is not None else None
    timeout_s = parse_duration(timeout, "--timeout")
    if timeout_s is None:
        raise BadInput("--timeout 0 would end the watch at once; give a duration such as 30m")
    interval_s = parse_duration(interval, "--interval")
    if interval_s is None or interval_s < 0.1:
        raise BadInput(f"--interval {interval} is too short; use 100ms or more, such as 1s")
    max_outage_s = parse_duration(max_outage, "--max-outage") or 0.0 if max_outage is not None else None
    options = build_verify_options(client=None, probe_config=None, proxy_status_file=None, alpha=0.001, timeout_s=5.0)

    def settings_for(cluster) -> WatchSettings:
        return WatchSettings(cluster.target.namespace, target, timeout_s, max_outage_s, interval_s)

    return settings_for, options
