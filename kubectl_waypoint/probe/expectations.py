"""What a probe expects, and the judgement of its responses against it (pure).

An Expectation is data with presets, as cilium-cli's connectivity results are: a split of
traffic between backends, an HTTP status, or a denial (L7 by the waypoint, L4 by ztunnel).
`judge` turns parsed responses into pass, fail or inconclusive with the evidence of a
ProbeReport, and never guesses from missing samples.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

from kubectl_waypoint.errors import BadInput
from kubectl_waypoint.probe.curl import Response
from kubectl_waypoint.probe.sequential import (
    DEFAULT_BETA,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_MAX_UNMATCHED,
    DEFAULT_TOLERANCE,
    EQUIVALENCE,
    FAIL,
    PASS,
    SEQUENTIAL,
    RateDecision,
    SplitDecision,
    equivalence_split,
    fixed_rate,
    sequential_rate,
    sequential_split,
    smallest_equivalence_count,
)
from kubectl_waypoint.probe.stats import (
    DEFAULT_ALPHA,
    Latency,
    expected_shares,
    latency_summary,
    longest_outage,
    paced_start_times,
    required_sample_size,
    split_p_value,
)

DENIAL_LAYERS = ("l7", "l4", "any")
RBAC_DENIED = b"RBAC: access denied"
CURL_RECV_ERROR = 56  # a reset connection: how ztunnel's L4 denial looks to curl
UNMATCHED = "unmatched"

# Status, denial and continuous probes: every request must be answered as expected unless the
# user allows less (--min-availability). Split probes judge availability by a bound (sequential.py).
DEFAULT_MIN_AVAILABILITY = 1.0
# Status and denial probes: 50 requests miss a policy leaking to 10% of requests (one bad
# waypoint replica in ten connections) with probability 0.9^50 = 0.5%, in a few seconds.
DEFAULT_CHECK_COUNT = 50
# Split probes send enough for the split test's power, plus this spare for failed or
# unmatched responses (80/20 -> 450 requests, 50/50 -> 650).
SPLIT_COUNT_SPARE = 1.15


def parse_status(text: str) -> str:
    """`--expect-status` value -> a three-digit code, or BadInput."""
    if not (len(text) == 3 and text.isdigit() and 100 <= int(text) <= 599):
        raise BadInput(f"--expect-status {text!r} is not an HTTP status code; use a number such as 200 or 403.")
    return text


@dataclass(frozen=True)
class Expectation:
    """What every response should show. Build it with the presets below."""

    shares: Mapping[str, float] | None = None
    status: str | None = None
    denied: str | None = None
    match: re.Pattern[str] | None = None

    @classmethod
    def split(
        cls, weights: Mapping[str, float | None], *, status: str | None = None, match: re.Pattern[str] | None = None
    ) -> Expectation:
        """Traffic split by weights (unset = 1, 0 = none) and answered with `status` (default 2xx)."""
        return cls(shares=expected_shares(weights), status=status and parse_status(status), match=match)

    @classmethod
    def answered(cls, status: str | None = None, *, match: re.Pattern[str] | None = None) -> Expectation:
        """Every request answered with `status`, or with any 2xx when None."""
        return cls(status=status and parse_status(status), match=match)

    @classmethod
    def denial(cls, layer: str = "any") -> Expectation:
        """Every request denied: `l7` 403 `RBAC: access denied`, `l4` reset (curl exit 56), or `any`."""
        if layer not in DENIAL_LAYERS:
            raise BadInput(f"--expect-denied={layer} is unknown; use l7, l4 or any.")
        return cls(denied=layer)


def compile_match(pattern: str) -> re.Pattern[str]:
    """`--match` value -> a compiled regex, or BadInput naming the regex error."""
    try:
        return re.compile(pattern)
    except re.error as error:
        raise BadInput(f"--match {pattern!r} is not a valid regular expression ({error}); fix the pattern.") from None


def default_count(expectation: Expectation, alpha: float = DEFAULT_ALPHA) -> int:
    """Requests to send when --count is not given (rounded up to a multiple of 50)."""
    if expectation.shares is None:
        return DEFAULT_CHECK_COUNT
    needed = required_sample_size(expectation.shares, alpha) * SPLIT_COUNT_SPARE
    return math.ceil(needed / 50) * 50


def classify(body: bytes, backends: Sequence[str] | None, match: re.Pattern[str] | None) -> str | None:
    """Which backend a body names, or None.

    With `match`: its first capture group (the whole match without groups). Otherwise the
    backend name occurring first in the body, as `grep -om1` reports it; of names starting
    at the same place the longest wins, so `reviews-v10` is not read as `reviews-v1`.
    """
    if match is not None:
        found = match.search(body.decode("utf-8", errors="replace"))
        if not found:
            return None
        return (found.group(1) if match.groups else found.group(0)) or None
    best: tuple[int, int, str] | None = None
    for name in backends or ():
        at = body.find(name.encode("utf-8"))
        if at >= 0 and (best is None or (at, -len(name)) < best[:2]):
            best = (at, -len(name), name)
    return best[2] if best else None


@dataclass(frozen=True)
class SplitDesign:
    """How a split is decided: the test, how far off a share may be, and the other limits."""

    test: str = EQUIVALENCE  # sequential (no --count) | equivalence (--count N)
    tolerance: float = DEFAULT_TOLERANCE
    max_unmatched: float = DEFAULT_MAX_UNMATCHED  # share of answered requests that may name no backend
    beta: float = DEFAULT_BETA
    max_requests: int = DEFAULT_MAX_REQUESTS  # the sequential test's cap


@dataclass(frozen=True)
class Served:
    """Who served the probe's requests, by the waypoint's own telemetry (probe/telemetry.py)."""

    backends: Mapping[str, int]  # backend (or unknown workload) -> requests the waypoint sent there
    waypoint_failures: int = 0  # requests the waypoint itself failed (response_flags set)
    notes: tuple[str, ...] = ()  # what the reader noticed: foreign traffic, unknown workloads


@dataclass(frozen=True)
class ShareEstimate:
    """Observed share of one backend with its confidence interval, and the expected share."""

    observed: float
    low: float
    high: float
    expected: float


@dataclass(frozen=True)
class ProbeVerdict:
    """The judgement and the evidence of a ProbeReport (interface.md field in comments)."""

    result: str  # pass | fail | inconclusive
    reasons: list[str]
    requests: int  # requests: sent
    lost: int  # sent but never reported: the exec stream ended early
    statuses: dict[str, int]  # statuses: "000" when no HTTP response
    backends: dict[str, int] | None  # backends, plus "unmatched"
    expected: dict[str, float] | None  # expected
    p_value: float | None  # pValue
    shares: dict[str, ShareEstimate] | None  # shares, each with the interval its decision used
    latency: Latency | None  # latencyMs, over responses that got an HTTP status
    availability: float | None  # availability, continuous mode
    longest_outage_s: float | None  # longestOutageSeconds, continuous mode
    required_requests: int | None  # requests a conclusive split test needs at this loss rate
    reused_connections: int  # transfers that did not open a new connection
    test: str | None = None  # test: sequential | equivalence
    tolerance: float | None = None  # tolerance
    decision: SplitDecision | None = None  # decision, per backend: share, interval, verdict
    availability_decision: RateDecision | None = None  # failed responses against --min-availability
    unmatched_decision: RateDecision | None = None  # unmatched responses against --max-unmatched
    measured_by: str | None = None  # measuredBy: telemetry | body
    undecided: bool = False  # more requests could still decide (the sequential test goes on)


def judge(
    expectation: Expectation,
    responses: Sequence[Response],
    *,
    sent: int,
    alpha: float = DEFAULT_ALPHA,
    min_availability: float = DEFAULT_MIN_AVAILABILITY,
    interval_s: float | None = None,
    design: SplitDesign | None = None,
    looks: Sequence[Mapping[str, int]] = (),
    served: Served | None = None,
) -> ProbeVerdict:
    """Judge parsed responses against the expectation.

    fail: an unexpected success or denial (always), any hit on a backend without weight, a
    split shown off its weights (sequential.py), availability or unmatched responses shown
    beyond their limits (split probes) or below `min_availability` (other probes).
    inconclusive: nothing to judge, a split or rate not decided yet, a reused connection, or,
    in continuous mode (given `interval_s`, the pacing of curl's --rate), requests lost from the
    stream, as the run then says nothing about part of its duration. Else pass.
    A split is decided by `design` (default: the equivalence test of a fixed count); `looks`
    are the split counts at the sequential test's earlier looks; `served` is the waypoint's
    telemetry, which then says who served instead of the response bodies.
    """
    if not 0 < alpha < 1:
        raise BadInput(f"--alpha {alpha} is not between 0 and 1; the default is {DEFAULT_ALPHA}.")
    if not 0 <= min_availability <= 1:
        raise BadInput(f"--min-availability {min_availability} is not between 0 and 1; use for example 0.99.")
    if len(responses) > sent:
        raise ValueError(f"{len(responses)} responses parsed but only {sent} requests sent")
    lost = sent - len(responses)
    good = [_as_expected(expectation, r) for r in responses]
    failures = _unexpected_outcomes(expectation, responses)
    doubts = []
    if not responses:
        doubts.append(f"None of the {sent} requests produced a result; check that the client pod can run curl.")
    elif lost and interval_s is not None:
        doubts.append(f"{_lost_note(lost, sent)}, so the run does not cover its whole duration.")
    split = None
    if expectation.shares is not None:
        split = _judge_split(expectation, responses, good, sent, alpha, min_availability, design or SplitDesign(),
                             looks, served)
        failures += split.failures
        doubts += split.doubts
    else:
        failures += _availability_failures(expectation, responses, good, min_availability)

    availability = outage = None
    if interval_s is not None and responses:
        durations = [r.time_total_s for r in responses]
        availability = sum(good) / len(responses)
        outage = longest_outage(paced_start_times(durations, interval_s), durations, good)
    result = "fail" if failures else "inconclusive" if doubts else "pass"
    return ProbeVerdict(
        result=result,
        reasons=failures + doubts if result != "pass" else [_summary(expectation, responses, good, split, lost)],
        requests=sent,
        lost=lost,
        statuses=dict(sorted(Counter(r.status for r in responses).items())),
        backends=split.backends if split else _matched_labels(expectation, responses, good),
        expected=dict(expectation.shares) if expectation.shares is not None else None,
        p_value=split.p_value if split else None,
        shares=split.shares if split else None,
        latency=latency_summary([r.time_total_s for r in responses if r.status != "000"]),
        availability=availability,
        longest_outage_s=outage,
        required_requests=split.required_requests if split else None,
        reused_connections=sum(not r.new_connection for r in responses),
        test=split.decision.test if split else None,
        tolerance=split.decision.tolerance if split else None,
        decision=split.decision if split else None,
        availability_decision=split.availability if split else None,
        unmatched_decision=split.unmatched if split else None,
        measured_by=split.measured_by if split else None,
        undecided=bool(split and split.undecided and responses and not failures and result == "inconclusive"),
    )


def _is_l7_denial(response: Response) -> bool:
    return response.status == "403" and RBAC_DENIED in response.body


def _is_l4_denial(response: Response) -> bool:
    return response.status == "000" and response.exit_code == CURL_RECV_ERROR


def _is_allowed(response: Response) -> bool:
    """The request reached the application: a 2xx or 3xx answer passed every policy."""
    return response.exit_code == 0 and response.status[0] in "23"


def is_as_expected(expectation: Expectation, response: Response) -> bool:
    """Whether one response is what the expectation wants (live progress counts these as ok)."""
    return _as_expected(expectation, response)


def _as_expected(expectation: Expectation, response: Response) -> bool:
    if expectation.denied is not None:
        return {
            "l7": _is_l7_denial(response),
            "l4": _is_l4_denial(response),
            "any": _is_l7_denial(response) or _is_l4_denial(response),
        }[expectation.denied]
    if response.exit_code != 0:
        return False
    return response.status == expectation.status if expectation.status else response.status[0] == "2"


def _wanted(expectation: Expectation) -> str:
    """The expected answer in words, after "were"."""
    return {
        None: f"answered HTTP {expectation.status or '2xx'}",
        "l7": "denied by the waypoint (403 RBAC: access denied)",
        "l4": "reset by ztunnel (curl exit 56)",
        "any": "denied (403 RBAC: access denied, or reset: curl exit 56)",
    }[expectation.denied]


def _outcome(response: Response) -> str:
    """What happened to one request, in words."""
    if _is_l7_denial(response):
        return "403 RBAC: access denied"
    if _is_l4_denial(response):
        return "connection reset (curl exit 56, as an L4 denial by ztunnel looks)"
    if response.exit_code == 28:
        return "timeout (curl exit 28)"
    if response.exit_code != 0:
        after = f" after HTTP {response.status}" if response.status != "000" else ""
        return f"curl exit {response.exit_code}{after}"
    return f"HTTP {response.status}"


def _tally(responses: Sequence[Response]) -> str:
    counts = Counter(_outcome(r) for r in responses)
    return ", ".join(f"{outcome} x{n}" for outcome, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _is_unexpected(expectation: Expectation, response: Response) -> bool:
    """An answer that contradicts the authorization expectation outright, never a transient."""
    if expectation.denied is not None:
        return _is_allowed(response)
    return _is_l7_denial(response) and expectation.status != "403"


def _unexpected_outcomes(expectation: Expectation, responses: Sequence[Response]) -> list[str]:
    """Loud reasons for an unexpected success or an unexpected denial; both always fail."""
    unexpected = [r for r in responses if _is_unexpected(expectation, r)]
    if not unexpected:
        return []
    share = f"{len(unexpected)} of {len(responses)} requests"
    if expectation.denied is not None:
        return [
            f"UNEXPECTED SUCCESS: {share} were allowed ({_tally(unexpected)}) although they should be "
            f"{_wanted(expectation)}: the authorization policy is not enforced."
        ]
    return [
        f"UNEXPECTED DENIAL: {share} were denied by the waypoint (403 RBAC: access denied) although they "
        f"should be {_wanted(expectation)}: the authorization policy rejects this client."
    ]


def _availability_failures(
    expectation: Expectation, responses: Sequence[Response], good: Sequence[bool], min_availability: float
) -> list[str]:
    """A reason when too few requests were answered as expected (not repeating unexpected ones)."""
    bad = [r for r, ok in zip(responses, good) if not ok]
    if not responses or sum(good) / len(responses) >= min_availability:
        return []
    if all(_is_unexpected(expectation, r) for r in bad):
        return []
    return [
        f"{len(bad)} of {len(responses)} requests were not {_wanted(expectation)} ({_tally(bad)}); "
        f"{sum(good) / len(responses):.1%} were, at least {min_availability:.1%} required."
    ]


@dataclass(frozen=True)
class _SplitJudgement:
    failures: list[str]
    doubts: list[str]
    backends: dict[str, int]
    p_value: float | None
    shares: dict[str, ShareEstimate] | None
    required_requests: int | None
    decision: SplitDecision
    availability: RateDecision
    unmatched: RateDecision
    measured_by: str
    undecided: bool  # only more requests are missing for a decision


def _judge_split(
    expectation: Expectation, responses: Sequence[Response], good: Sequence[bool], sent: int, alpha: float,
    min_availability: float, design: SplitDesign, looks: Sequence[Mapping[str, int]], served: Served | None,
) -> _SplitJudgement:
    """The split part of the verdict: who served (telemetry, else bodies), the split, the rates."""
    shares = expectation.shares
    answered = [r for r in responses if r.exit_code == 0 and r.status != "000"]
    if served is not None:
        counts = Counter({name: n for name, n in served.backends.items() if n})
        errors = len(responses) - len(answered) + served.waypoint_failures
        attributed = sum(counts.values())
        unmatched = max(0, len(answered) - served.waypoint_failures - attributed)
        judged = attributed + unmatched
    else:
        successful = [r for r, ok in zip(responses, good) if ok]
        counts = Counter(classify(r.body, list(shares), expectation.match) for r in successful)
        unmatched = counts.pop(None, 0)
        errors = len(responses) - len(successful)
        judged = len(successful)
    backends = {name: counts.get(name, 0) for name in shares}
    backends.update(sorted((name, n) for name, n in counts.items() if name not in shares))
    source = "by the waypoint's telemetry" if served is not None else "by their bodies"
    failures = [
        f"{_requests(n, 'response')} came from {name} ({source}), which "
        + ("has weight 0 and must get no traffic." if name in shares else "is not a backend of the expected split.")
        for name, n in backends.items()
        if n and not shares.get(name)
    ]
    split_counts = {name: backends[name] for name in shares}
    sequential = design.test == SEQUENTIAL
    if sequential:
        decision = sequential_split([*looks, split_counts], shares, design.tolerance, alpha=alpha, beta=design.beta)
        availability = sequential_rate(errors, len(responses), 1 - min_availability, alpha=alpha, beta=design.beta)
        unmatched_rate = sequential_rate(unmatched, judged, design.max_unmatched, alpha=alpha, beta=design.beta)
    else:
        decision = equivalence_split(split_counts, shares, design.tolerance, alpha=alpha)
        availability = fixed_rate(errors, len(responses), 1 - min_availability, alpha=alpha)
        unmatched_rate = fixed_rate(unmatched, judged, design.max_unmatched, alpha=alpha)
    failures += _rate_failures(availability, unmatched_rate, responses, good, expectation, served)
    if decision.verdict == FAIL:
        shown = f"by more than {design.tolerance:.0%}" if not sequential else \
            f"(a share {design.tolerance:.0%} off its weight explains the counts better)"
        failures.append(f"The traffic split differs from the expected one {shown}: {_evidence(decision, FAIL)}.")
    doubts = []
    reused = sum(not r.new_connection for r in responses)
    if reused:
        doubts.append(f"{reused} of {len(responses)} requests came on a reused connection: those did not choose a "
                      "waypoint anew and are not independent samples, so the split cannot be judged (check that "
                      "nothing in the client pod keeps connections alive).")
    required = None
    undecided = [what for what, d in (("split", decision), ("availability", availability),
                                      ("unmatched share", unmatched_rate)) if d.verdict not in (PASS, FAIL)]
    if undecided and not failures:
        what = " and ".join(filter(None, [", ".join(undecided[:-1]), undecided[-1]]))
        if sequential:
            verb = "is" if len(undecided) == 1 else "are"
            doubts.append(f"After {sent} requests the {what} {verb} not decided yet "
                          f"({_evidence(decision, None)}); the cap is --max-requests {design.max_requests}: "
                          "raise it, or check what makes the shares waver.")
        else:
            required = _suggested_count(shares, design.tolerance, sent, sum(split_counts.values()))
            doubts.append(f"{sent} requests cannot decide the {what} ({_evidence(decision, None)}); "
                          f"send more (--count {required}), or drop --count for the sequential test.")
    p_value = split_p_value(backends, shares)
    estimates = {e.name: ShareEstimate(e.share, e.low, e.high, e.expected) for e in decision.backends} \
        if sum(split_counts.values()) else None
    return _SplitJudgement(failures, doubts, {**backends, UNMATCHED: unmatched}, p_value, estimates, required,
                           decision, availability, unmatched_rate, "telemetry" if served is not None else "body",
                           bool(undecided) and not reused)


def _evidence(decision: SplitDecision, verdict: str | None) -> str:
    """Each backend's share and the interval its decision used (only those with `verdict`, if given)."""
    return ", ".join(
        f"{e.name} {e.share:.1%} [{e.low:.1%}-{e.high:.1%}, {e.confidence * 100:.10g}% interval] "
        f"expected {e.expected:.1%}"
        for e in decision.backends if verdict is None or e.verdict == verdict)


def _rate_failures(availability: RateDecision, unmatched: RateDecision, responses: Sequence[Response],
                   good: Sequence[bool], expectation: Expectation, served: Served | None) -> list[str]:
    failures = []
    if availability.verdict == FAIL:
        failed = "failed by the mesh" if served is not None else f"not {_wanted(expectation)}"
        bad = [r for r, ok in zip(responses, good) if not ok]
        tally = f" ({_tally(bad)})" if bad and served is None else ""
        failures.append(
            f"{availability.bad} of {availability.total} requests were {failed}{tally}: availability "
            f"{1 - availability.rate:.1%}, at most {1 - availability.bound:.1%} at "
            f"{availability.confidence * 100:.10g}% confidence, below the {1 - availability.limit:.1%} required "
            "(--min-availability).")
    if unmatched.verdict == FAIL:
        what, check = ("were not counted by the waypoint", "another proxy may have served them") \
            if served is not None else ("named no backend", "check the backend names or --match")
        failures.append(
            f"{unmatched.bad} of {unmatched.total} answered requests ({unmatched.rate:.1%}, at least "
            f"{unmatched.bound:.1%} at {unmatched.confidence * 100:.10g}% confidence) {what}, more than "
            f"{unmatched.limit:.0%} (--max-unmatched); {check}.")
    return failures


def _suggested_count(shares: Mapping[str, float], tolerance: float, sent: int, judged: int) -> int:
    """Requests for a likely decision: the smallest passing count, doubled, scaled for lost ones."""
    needed = 2 * smallest_equivalence_count(shares, tolerance)
    return max(needed, math.ceil(needed * sent / judged)) if judged else needed


def _matched_labels(
    expectation: Expectation, responses: Sequence[Response], good: Sequence[bool]
) -> dict[str, int] | None:
    """Backend counts by --match when there is no split to test, else None."""
    if expectation.match is None:
        return None
    counts = Counter(classify(r.body, None, expectation.match) for r, ok in zip(responses, good) if ok)
    unmatched = counts.pop(None, 0)
    return {**dict(sorted(counts.items())), UNMATCHED: unmatched}


def _lost_note(lost: int, sent: int) -> str:
    return f"{lost} of {sent} requests were lost when the exec stream ended early"


def _requests(n: int, noun: str = "request") -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _summary(
    expectation: Expectation,
    responses: Sequence[Response],
    good: Sequence[bool],
    split: _SplitJudgement | None,
    lost: int,
) -> str:
    """One sentence for a pass."""
    answered = sum(good)
    if len(responses) == 1:
        counted = "The request was"
    elif answered == len(responses):
        counted = f"All {answered} requests were"
    else:
        counted = f"{answered} of {len(responses)} requests were"
    parts = [f"{counted} {_wanted(expectation)}"]
    if split:
        within = f"within {split.decision.tolerance:.0%} of" if split.decision.test == EQUIVALENCE else "as"
        parts.append(f"the split is {within} the weights ({split.decision.test} test, measured by "
                     f"{split.measured_by}): {_evidence(split.decision, None)}")
    reused = sum(not r.new_connection for r in responses)
    if reused:
        parts.append(f"{reused} reused a connection, so they did not choose a waypoint anew")
    if lost:
        parts.append(_lost_note(lost, lost + len(responses)))
    return "; ".join(parts) + "."
