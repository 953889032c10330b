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
from kubectl_waypoint.probe.stats import (
    DEFAULT_ALPHA,
    DETECTABLE_DEVIATION,
    TARGET_POWER,
    Latency,
    expected_shares,
    latency_summary,
    longest_outage,
    paced_start_times,
    required_sample_size,
    split_p_value,
    wilson_interval,
)

DENIAL_LAYERS = ("l7", "l4", "any")
RBAC_DENIED = b"RBAC: access denied"
CURL_RECV_ERROR = 56  # a reset connection: how ztunnel's L4 denial looks to curl
UNMATCHED = "unmatched"

# Up to 5% of successful responses may name no backend: pages that degrade (bookinfo's
# productpage shows no reviews when reviews times out) are noise. Above that, the backend
# names or --match are probably wrong and the split cannot be trusted.
MAX_UNMATCHED_SHARE = 0.05
# Every request must be answered as expected unless the user allows less (--min-availability).
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
    shares: dict[str, ShareEstimate] | None  # shares with (1 - alpha) Wilson intervals
    latency: Latency | None  # latencyMs, over responses that got an HTTP status
    availability: float | None  # availability, continuous mode
    longest_outage_s: float | None  # longestOutageSeconds, continuous mode
    required_requests: int | None  # requests a conclusive split test needs at this loss rate
    reused_connections: int  # transfers that did not open a new connection


def judge(
    expectation: Expectation,
    responses: Sequence[Response],
    *,
    sent: int,
    alpha: float = DEFAULT_ALPHA,
    min_availability: float = DEFAULT_MIN_AVAILABILITY,
    interval_s: float | None = None,
) -> ProbeVerdict:
    """Judge parsed responses against the expectation.

    fail: an unexpected success or denial (always), fewer responses as expected than
    `min_availability` allows, a split rejected at `alpha` (whatever the sample size), any
    hit on a backend without weight, or too many unmatched responses. inconclusive: nothing
    to judge, a split sample too small for the test's power, or, in continuous mode (given
    `interval_s`, the pacing of curl's --rate), requests lost from the stream, as the run
    then says nothing about part of its duration. Else pass.
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
    failures += _availability_failures(expectation, responses, good, min_availability)
    doubts = []
    if not responses:
        doubts.append(f"None of the {sent} requests produced a result; check that the client pod can run curl.")
    elif lost and interval_s is not None:
        doubts.append(f"{_lost_note(lost, sent)}, so the run does not cover its whole duration.")
    split = _judge_split(expectation, responses, good, sent, alpha) if expectation.shares is not None else None
    if split:
        failures += split.failures
        doubts += split.doubts

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
    required_requests: int


def _judge_split(
    expectation: Expectation, responses: Sequence[Response], good: Sequence[bool], sent: int, alpha: float
) -> _SplitJudgement:
    """The split part of the verdict, over the responses answered as expected."""
    shares = expectation.shares
    successful = [r for r, ok in zip(responses, good) if ok]
    counts = Counter(classify(r.body, list(shares), expectation.match) for r in successful)
    unmatched = counts.pop(None, 0)
    backends = {name: counts.get(name, 0) for name in shares}
    backends.update(sorted((name, n) for name, n in counts.items() if name not in shares))
    failures = [
        f"{_requests(n, 'response')} came from {name}, which "
        + ("has weight 0 and must get no traffic." if name in shares else "is not a backend of the expected split.")
        for name, n in backends.items()
        if n and not shares.get(name)
    ]
    if successful and unmatched / len(successful) > MAX_UNMATCHED_SHARE:
        failures.append(
            f"{unmatched} of {len(successful)} successful responses ({unmatched / len(successful):.1%}) named no "
            f"backend, more than {MAX_UNMATCHED_SHARE:.0%}; check the backend names or --match."
        )
    p_value = split_p_value(backends, shares)
    matched = sum(backends.values())
    estimates = {
        name: ShareEstimate(n / matched, *wilson_interval(n, matched, 1 - alpha), shares.get(name, 0.0))
        for name, n in backends.items()
    } if matched else None
    tested = sum(n for name, n in backends.items() if shares.get(name))
    required = required_sample_size(shares, alpha)
    suggestion = max(required, math.ceil(required * sent / tested)) if tested else required
    doubts = []
    if p_value is not None and p_value <= alpha:
        observed = ", ".join(
            f"{name} {e.observed:.1%} [{e.low:.1%}-{e.high:.1%}] (expected {e.expected:.1%})"
            for name, e in estimates.items()
            if e.expected
        )
        failures.append(
            f"The traffic split differs from the expected one (p = {p_value:.2g} <= alpha {alpha:g}): {observed}."
        )
    elif tested < required:
        doubts.append(
            f"Only {tested} successful responses named a weighted backend, too few to detect a "
            f"{DETECTABLE_DEVIATION * 100:g}-point deviation from the split with {TARGET_POWER:.0%} power "
            f"(needs {required}); "
            f"send at least {suggestion} requests (--count {suggestion})."
        )
    return _SplitJudgement(failures, doubts, {**backends, UNMATCHED: unmatched}, p_value, estimates, suggestion)


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
    if split and split.shares:
        observed = ", ".join(f"{name} {e.observed:.1%}" for name, e in split.shares.items() if e.expected)
        p_value = f" (p = {split.p_value:.2g})" if split.p_value is not None else ""
        parts.append(f"the split matches the expected one{p_value}: {observed}")
    reused = sum(not r.new_connection for r in responses)
    if reused:
        parts.append(f"{reused} reused a connection, so they did not choose a waypoint anew")
    if lost:
        parts.append(_lost_note(lost, lost + len(responses)))
    return "; ".join(parts) + "."
