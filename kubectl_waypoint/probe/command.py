"""`kubectl waypoint probe`: check the flags, build the expectation, run the probe, render, exit code.

Every flag is checked before the cluster is contacted, so bad input costs nothing and always
exits 2 with one sentence.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import click

from ..errors import BadInput
from .curl import validate_header, validate_method, validate_url
from .expectations import (
    DENIAL_LAYERS,
    Expectation,
    compile_match,
    default_count,
    parse_status,
)
from .sequential import (
    DEFAULT_MAX_REQUESTS,
    DEFAULT_MAX_UNMATCHED,
    DEFAULT_SPLIT_MIN_AVAILABILITY,
    DEFAULT_TOLERANCE,
    check_design,
    check_limit,
    smallest_equivalence_count,
    smallest_sequential_count,
)
from .stats import parse_weights


@dataclass(frozen=True)
class ProbeOptions:
    """The probe's flags as given on the command line (strings where the CLI had strings)."""

    client: str
    url: str
    container: str | None = None
    count: int | None = None
    expect_split: str | None = None
    route: str | None = None
    match: str | None = None
    expect_status: str | None = None
    expect_denied: str | None = None
    method: str = "GET"
    headers: Sequence[str] = ()
    timeout: str = "5s"
    alpha: float = 0.001
    duration: str | None = None
    interval: str | None = None
    min_availability: float | None = None  # split probes: 0.99 (a bound); other probes: 1.0 (every request)
    tolerance: float = DEFAULT_TOLERANCE
    max_requests: int = DEFAULT_MAX_REQUESTS
    max_unmatched: float = DEFAULT_MAX_UNMATCHED


@dataclass(frozen=True)
class _Checked:
    weights: dict[str, float | None] | None
    route: tuple[str | None, str] | None
    timeout_s: float
    duration_s: float | None
    interval_s: float | None


def check_options(options: ProbeOptions) -> _Checked:
    """Every flag on its own and against the others; BadInput (exit 2) with one sentence."""
    validate_url(options.url)
    validate_method(options.method)
    for header in options.headers:
        validate_header(header)
    conflicts = [
        (options.expect_split and options.route, "--expect-split and --route both give the expected split; pass one."),
        (options.expect_denied and (options.expect_split or options.route),
         "--expect-denied cannot be combined with --expect-split or --route: a denied request reaches no backend."),
        (options.expect_denied and options.expect_status,
         "--expect-denied and --expect-status contradict each other; pass one."),
        (options.expect_denied and options.match,
         "--match names the backend in a response, which a denied request never gets; drop --match."),
        (options.count is not None and options.duration,
         "--count and --duration both set how many requests to send; pass --duration with --interval, or --count."),
        (options.interval and not options.duration,
         "--interval paces continuous mode, which needs --duration too (for example --duration 5m --interval 1s)."),
    ]
    for conflicting, sentence in conflicts:
        if conflicting:
            raise BadInput(sentence)
    if options.expect_denied is not None and options.expect_denied not in DENIAL_LAYERS:
        raise BadInput(f"--expect-denied={options.expect_denied} is unknown; write --expect-denied=l7, =l4 or =any.")
    if options.count is not None and options.count < 1:
        raise BadInput(f"--count {options.count} is not a positive number; send at least 1 request.")
    if options.expect_status is not None:
        parse_status(options.expect_status)
    if options.match is not None:
        compile_match(options.match)
    if not 0 < options.alpha < 1:
        raise BadInput(f"--alpha {options.alpha} is not between 0 and 1; the default is 0.001.")
    if options.min_availability is not None:
        check_limit(options.min_availability, "--min-availability", "0.99")
    check_limit(options.max_unmatched, "--max-unmatched", "0.05")
    check_design(options.tolerance, options.alpha)
    if options.max_requests < 1:
        raise BadInput(f"--max-requests {options.max_requests} is not a positive number; the default is "
                       f"{DEFAULT_MAX_REQUESTS}.")
    weights = parse_weights(options.expect_split) if options.expect_split is not None else None
    if weights is not None and len({weight is None for weight in weights.values()}) > 1:
        missing = next(name for name, weight in weights.items() if weight is None)
        raise BadInput(f"--expect-split gives weights to some backends but not to {missing}; give every backend a "
                       f"weight ({missing}=0 for none) or none at all (equal shares).")
    route = None
    if options.route is not None:
        namespace, slash, name = options.route.rpartition("/")
        if not name or (slash and not namespace) or "/" in namespace:
            raise BadInput(f"--route {options.route!r} is not [NAMESPACE/]NAME; write it as bookinfo/reviews.")
        route = (namespace or None, name)
    timeout_s = _positive_duration(options.timeout, "--timeout")
    duration_s = _positive_duration(options.duration, "--duration") if options.duration else None
    interval_s = _positive_duration(options.interval, "--interval") if options.interval else None
    if duration_s is not None and interval_s is not None and interval_s > duration_s:
        raise BadInput(f"--interval {options.interval} is longer than --duration {options.duration}; "
                       "shorten the interval.")
    return _Checked(weights, route, timeout_s, duration_s, interval_s)


def _positive_duration(text: str, flag: str) -> float:
    from ..kube.config import parse_duration

    seconds = parse_duration(text, flag)
    if seconds is None:
        raise BadInput(f"{flag} {text} is not a positive duration; use for example 5s or 500ms.")
    return seconds


def check_split_size(options: ProbeOptions, expectation: Expectation, duration_s: float | None) -> None:
    """BadInput when --count or --max-requests is too small for the split test ever to pass."""
    if expectation.shares is None or duration_s is not None:
        return
    if options.count is not None:
        needed = smallest_equivalence_count(expectation.shares, options.tolerance)
        if options.count < needed:
            raise BadInput(f"--count {options.count} is too few: the split can be shown within "
                           f"{options.tolerance:g} of its weights only from {needed} requests; pass --count "
                           f"{needed} or more, or drop --count for the sequential test.")
    else:
        needed = smallest_sequential_count(expectation.shares, options.tolerance, options.alpha)
        if options.max_requests < needed:
            raise BadInput(f"--max-requests {options.max_requests} is too few: the sequential test cannot pass "
                           f"before {needed} requests; pass --max-requests {needed} or more "
                           f"(the default is {DEFAULT_MAX_REQUESTS}).")


def build_expectation(options: ProbeOptions, weights: dict[str, float | None] | None) -> Expectation:
    match = compile_match(options.match) if options.match is not None else None
    if options.expect_denied is not None:
        return Expectation.denial(options.expect_denied)
    if weights is not None:
        return Expectation.split(weights, status=options.expect_status, match=match)
    return Expectation.answered(options.expect_status, match=match)


def run_probe_command(flags, options: ProbeOptions, *, output: str, no_colour: bool) -> int:
    """The whole command: check, connect, resolve the client, probe, render; returns the exit code."""
    from ..commands import RESULT_EXIT_CODES, conclude, connect, warn_permissions
    from ..render.sentences import probe_sentence
    from ..render.probe import ProgressPrinter, render_probe
    from ..render.structured import dump
    from ..render.text import style_for
    from ..report import probe_report, report_origin
    from .engine import fetch_route_weights, resolve_client, run_probe
    from .telemetry import TelemetryUnavailable, for_route, for_url

    checked = check_options(options)
    cluster = connect(flags)
    namespace = cluster.target.namespace
    warn_permissions(cluster, "probe", namespace)
    weights = checked.weights
    if checked.route is not None:
        route_namespace, route_name = checked.route
        weights = fetch_route_weights(cluster, route_namespace or namespace, route_name)
    expectation = build_expectation(options, weights)
    check_split_size(options, expectation, checked.duration_s)
    client = resolve_client(cluster, namespace, options.client, options.container)
    count = options.count
    if checked.duration_s is None and count is None and expectation.shares is None:
        count = default_count(expectation, options.alpha)
    telemetry, measurement_note = None, None
    if expectation.shares is not None and checked.duration_s is None:
        try:
            if checked.route is not None:
                telemetry = for_route(cluster, route_namespace or namespace, route_name, client.workload,
                                      client.namespace, expectation.shares)
            else:
                telemetry = for_url(cluster, options.url, client.workload, client.namespace, expectation.shares)
        except TelemetryUnavailable as error:
            measurement_note = f"Who served was read from the response bodies: {error.reason}"
    split_probe = expectation.shares is not None
    min_availability = options.min_availability
    if min_availability is None:
        min_availability = DEFAULT_SPLIT_MIN_AVAILABILITY if split_probe else 1.0
    progress_stream = sys.stdout if output == "table" else sys.stderr
    printer = ProgressPrinter(progress_stream, checked.duration_s) if checked.duration_s is not None else None
    try:
        outcome = run_probe(cluster, client, options.url, expectation, count=count, method=options.method,
                            headers=tuple(options.headers), timeout_s=checked.timeout_s, alpha=options.alpha,
                            duration_s=checked.duration_s, interval_s=checked.interval_s,
                            min_availability=min_availability, progress=printer, tolerance=options.tolerance,
                            max_requests=options.max_requests, max_unmatched=options.max_unmatched,
                            telemetry=telemetry)
        if measurement_note:
            outcome = dataclasses.replace(outcome, notes=(measurement_note, *outcome.notes))
    finally:
        if printer is not None:
            printer.finish()
    if output == "table":
        text = render_probe(outcome, style_for(sys.stdout, no_colour))
    else:
        text = dump(probe_report(outcome, report_origin(cluster.target)), output)
    click.echo(text, nl=False)
    return conclude(RESULT_EXIT_CODES[outcome.verdict.result], probe_sentence(outcome))
