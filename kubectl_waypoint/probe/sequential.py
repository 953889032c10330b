"""Decisions of a split probe: a sequential test by default, an equivalence test for a fixed count.

Pure functions over counts (stdlib only). docs/statistics.md explains the design and lists its
measured operating characteristics; the names here follow it.

Sequential (no --count). For every backend and both directions, a Wald SPRT of "the share is its
weight p0" against "the share is p0 -+ tolerance". The run fails as soon as one log-likelihood
ratio reaches log(m / alpha) (m directional tests): by Ville's inequality each crosses it with
probability at most alpha / m under the weights, however long the run goes on, so the false
failure rate is at most alpha. It passes once every ratio is at most log(beta) and every backend's
likelihood-ratio interval (the one shown) holds its weight. Availability and unmatched responses
are two more SPRTs of a rate ("at most the limit" against "the limit plus max(limit, 4 points)").
A run stops when it fails, or when all three passed; at --max-requests it is inconclusive.

Fixed count (--count N). Equivalence: a backend passes when its 90% Clopper-Pearson interval lies
inside [w - tolerance, w + tolerance] (two one-sided tests at 0.05; all backends must pass, an
intersection-union test, so no adjustment); it fails when its (1 - 2 alpha/m) interval lies wholly
outside the band; else it is undecided. Rates fail when their one-sided (1 - alpha) bound is
beyond the limit, else they pass.

With two backends the second share is one minus the first: one backend is tested and the other
mirrors it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from ..errors import BadInput

DEFAULT_TOLERANCE = 0.10
DEFAULT_BETA = 0.10
EQUIVALENCE_LEVEL = 0.05
DEFAULT_MAX_REQUESTS = 450
DEFAULT_SPLIT_MIN_AVAILABILITY = 0.99
DEFAULT_MAX_UNMATCHED = 0.05
BATCH_SIZE = 10
# A rate's alternative lies this far above its limit at least (and never below twice the limit).
RATE_MIN_GAP = 0.04

SEQUENTIAL = "sequential"
EQUIVALENCE = "equivalence"
PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"


@dataclass(frozen=True)
class BackendDecision:
    """One backend: its observed share, the interval its decision used, and that decision."""

    name: str
    count: int
    share: float
    expected: float
    low: float
    high: float
    confidence: float  # of [low, high]
    verdict: str  # pass | fail | undecided


@dataclass(frozen=True)
class SplitDecision:
    verdict: str  # pass | fail | undecided
    test: str  # sequential | equivalence
    tolerance: float
    backends: tuple[BackendDecision, ...]


@dataclass(frozen=True)
class RateDecision:
    """A rate of bad outcomes (failed or unmatched responses) against the most allowed."""

    bad: int
    total: int
    limit: float  # the largest acceptable rate
    bound: float  # one-sided (confidence) lower bound of the rate: above `limit` means shown too high
    confidence: float
    verdict: str

    @property
    def rate(self) -> float:
        return self.bad / self.total if self.total else 0.0


# ------------------------------------------------------------------------------------ checking input

def check_design(tolerance: float, alpha: float, beta: float = DEFAULT_BETA) -> None:
    """BadInput unless the parameters make a test; each message says what would work."""
    if not 0 < tolerance < 0.5:
        raise BadInput(f"--tolerance {tolerance:g} is not between 0 and 0.5; the default is {DEFAULT_TOLERANCE:g} "
                       "(a share may be 10 points off).")
    if not 0 < alpha < 1:
        raise BadInput(f"--alpha {alpha:g} is not between 0 and 1; the default is 0.001.")
    if not 0 < beta < 1:
        raise ValueError(f"beta {beta} is not between 0 and 1")


def check_limit(value: float, flag: str, example: str) -> None:
    if not 0 <= value <= 1:
        raise BadInput(f"{flag} {value:g} is not between 0 and 1; use for example {example}.")


def smallest_equivalence_count(shares: Mapping[str, float], tolerance: float, limit: int = 20_000) -> int:
    """Fewest requests with which a perfect sample passes the equivalence test (BadInput if none)."""
    return _smallest(tuple(sorted(shares.values())), tolerance, 0.0, EQUIVALENCE, limit)


def smallest_sequential_count(shares: Mapping[str, float], tolerance: float, alpha: float,
                              beta: float = DEFAULT_BETA, limit: int = 20_000) -> int:
    """Fewest requests with which a perfect sample passes the sequential test."""
    return _smallest(tuple(sorted(shares.values())), tolerance, (alpha, beta), SEQUENTIAL, limit)


@functools.lru_cache(maxsize=64)
def _smallest(shares: tuple[float, ...], tolerance: float, levels, test: str, limit: int) -> int:
    """Scan upward from a normal-theory start below the answer (passing is not monotone in n)."""
    names = {f"b{i}": share for i, share in enumerate(shares)}
    spread = max(share * (1 - share) for share in shares)
    if test == EQUIVALENCE:
        start = math.floor(0.5 * NormalDist().inv_cdf(1 - EQUIVALENCE_LEVEL) ** 2 * spread / tolerance ** 2)
    else:
        start = math.floor(0.5 * math.log(1 / levels[1]) * 2 * spread / tolerance ** 2)
    for n in range(max(1, start), limit + 1):
        counts = _ideal_counts(names, n)
        if test == EQUIVALENCE:
            decided = equivalence_split(counts, names, tolerance, alpha=0.001).verdict
        else:
            decided = sequential_split([counts], names, tolerance, alpha=levels[0], beta=levels[1]).verdict
        if decided == PASS:
            return n
    raise BadInput(f"No number of requests up to {limit} can show this split within {tolerance:g}; "
                   "raise --tolerance.")


def _ideal_counts(shares: Mapping[str, float], n: int) -> dict[str, int]:
    """The sample closest to the weights: largest remainders get the rounding."""
    floors = {name: math.floor(share * n) for name, share in shares.items()}
    left = n - sum(floors.values())
    for name in sorted(shares, key=lambda name: floors[name] - shares[name] * n)[:left]:
        floors[name] += 1
    return floors


# ------------------------------------------------------------------------------------ the split

def _tested(shares: Mapping[str, float]) -> list[str]:
    """Backends whose shares are tested: with exactly two, the first (the other mirrors it)."""
    names = list(shares)
    return names[:1] if len(names) == 2 else names


def _directions(p0: float, tolerance: float) -> list[float]:
    return [p1 for p1 in (p0 - tolerance, p0 + tolerance) if 0 <= p1 <= 1]


def sequential_split(looks: Sequence[Mapping[str, int]], shares: Mapping[str, float],
                     tolerance: float = DEFAULT_TOLERANCE, *, alpha: float,
                     beta: float = DEFAULT_BETA) -> SplitDecision:
    """The sequential split test after the looks so far (cumulative counts per look, the last is now).

    Each directional test keeps its first decision (a Wald SPRT stops there): a ratio that once
    fell to log(beta) has accepted its weight for good, one that reached log(m / alpha) failed.
    Callers stop at the first fail or pass, so the last look is where the decision was made.
    """
    current = looks[-1] if looks else {}
    n = sum(current.get(name, 0) for name in shares)
    tested = _tested(shares)
    directions = {name: _directions(shares[name], tolerance) for name in tested}
    tests = sum(len(d) for d in directions.values())
    upper, lower = math.log(tests / alpha), math.log(beta)
    confidence = 1 - alpha / len(tested)
    critical = _chi2_1(confidence)
    totals = [sum(look.get(name, 0) for name in shares) for look in looks]
    verdicts = {}
    for name in tested:
        p0 = shares[name]
        outcomes = [_first_crossing([(look.get(name, 0), total) for look, total in zip(looks, totals)],
                                    p1, p0, upper, lower) for p1 in directions[name]]
        holds = _likelihood_gap(current.get(name, 0), n, p0) <= critical / 2
        if FAIL in outcomes:
            verdicts[name] = FAIL
        elif n and holds and all(outcome == PASS for outcome in outcomes):
            verdicts[name] = PASS
        else:
            verdicts[name] = UNDECIDED
    intervals = {name: likelihood_ratio_interval(current.get(name, 0), n, critical) for name in tested}
    backends = []
    for name in shares:
        k = current.get(name, 0)
        low, high = intervals[name] if name in intervals else _mirror(intervals[tested[0]])
        backends.append(BackendDecision(name, k, k / n if n else 0.0, shares[name], low, high, confidence,
                                        verdicts.get(name) or verdicts[tested[0]]))
    return SplitDecision(_overall(verdicts.values()), SEQUENTIAL, tolerance, tuple(backends))


def _first_crossing(path: Sequence[tuple[int, int]], p1: float, p0: float, upper: float, lower: float) -> str:
    """Where one SPRT's log-likelihood ratio first leaves (lower, upper) along the looks."""
    for k, n in path:
        if not n:
            continue
        ratio = _log_likelihood_ratio(k, n, p1, p0)
        if ratio >= upper:
            return FAIL
        if ratio <= lower:
            return PASS
    return UNDECIDED


def _mirror(interval: tuple[float, float]) -> tuple[float, float]:
    return (1 - interval[1], 1 - interval[0])


def equivalence_split(counts: Mapping[str, int], shares: Mapping[str, float], tolerance: float = DEFAULT_TOLERANCE,
                      *, alpha: float, level: float = EQUIVALENCE_LEVEL) -> SplitDecision:
    """The fixed-count split test: every share shown inside the band passes, one shown outside fails."""
    n = sum(counts.get(name, 0) for name in shares)
    tested = _tested(shares)
    tails = sum(len(_directions(shares[name], tolerance)) for name in tested) or 1
    verdicts, shown = {}, {}
    for name in tested:
        p0, k = shares[name], counts.get(name, 0)
        outside_low, outside_high = clopper_pearson(k, n, alpha / tails)
        inside_low, inside_high = clopper_pearson(k, n, level)
        if n and (outside_low > p0 + tolerance or outside_high < p0 - tolerance):
            verdicts[name], shown[name] = FAIL, (outside_low, outside_high, 1 - 2 * alpha / tails)
        else:
            inside = n and inside_low >= p0 - tolerance and inside_high <= p0 + tolerance
            verdicts[name], shown[name] = PASS if inside else UNDECIDED, (inside_low, inside_high, 1 - 2 * level)
    backends = []
    for name in shares:
        k = counts.get(name, 0)
        if name in shown:
            low, high, confidence = shown[name]
            verdict = verdicts[name]
        else:  # the mirror of the tested backend
            low, high, confidence = 1 - shown[tested[0]][1], 1 - shown[tested[0]][0], shown[tested[0]][2]
            verdict = verdicts[tested[0]]
        backends.append(BackendDecision(name, k, k / n if n else 0.0, shares[name], low, high, confidence, verdict))
    return SplitDecision(_overall(verdicts.values()), EQUIVALENCE, tolerance, tuple(backends))


def _overall(verdicts) -> str:
    verdicts = list(verdicts)
    if FAIL in verdicts:
        return FAIL
    return PASS if verdicts and all(v == PASS for v in verdicts) else UNDECIDED


# ------------------------------------------------------------------------------------ rates

def rate_alternative(limit: float) -> float:
    """The rate the sequential test must tell apart from `limit`: limit + max(limit, 4 points)."""
    return min(limit + max(limit, RATE_MIN_GAP), (1 + limit) / 2)


def sequential_rate(bad: int, total: int, limit: float, *, alpha: float, beta: float = DEFAULT_BETA) -> RateDecision:
    """SPRT of "rate <= limit" against "rate >= rate_alternative(limit)", agreeing with its bound."""
    bound = clopper_pearson(bad, total, alpha)[0] if total else 0.0
    if limit >= 1:
        verdict = PASS
    else:
        ratio = _log_likelihood_ratio(bad, total, rate_alternative(limit), limit)
        if total and ratio >= math.log(1 / alpha) and bound > limit:
            verdict = FAIL
        elif total and ratio <= math.log(beta) and bound <= limit:
            verdict = PASS
        else:
            verdict = UNDECIDED
    return RateDecision(bad, total, limit, bound, 1 - alpha, verdict)


def fixed_rate(bad: int, total: int, limit: float, *, alpha: float) -> RateDecision:
    """A rate fails when its one-sided (1 - alpha) lower bound exceeds `limit`; else it passes."""
    bound = clopper_pearson(bad, total, alpha)[0] if total else 0.0
    verdict = FAIL if total and bound > limit else PASS if total else UNDECIDED
    return RateDecision(bad, total, limit, bound, 1 - alpha, verdict)


# ------------------------------------------------------------------------------------ distributions

def _xlogy(x: float, y: float) -> float:
    """x log y with 0 log 0 = 0."""
    if x == 0:
        return 0.0
    return x * math.log(y) if y > 0 else -math.inf


def _log_likelihood(k: int, n: int, p: float) -> float:
    return _xlogy(k, p) + _xlogy(n - k, 1 - p)


def _log_likelihood_ratio(k: int, n: int, p1: float, p0: float) -> float:
    """log L(p1) / L(p0) of k successes in n; +inf when only p1 allows the data."""
    if 0 < p0 < 1 and 0 < p1 < 1:
        return k * math.log(p1 / p0) + (n - k) * math.log((1 - p1) / (1 - p0))
    l0, l1 = _log_likelihood(k, n, p0), _log_likelihood(k, n, p1)
    if l0 == -math.inf:
        return math.inf if l1 > -math.inf else 0.0
    return l1 - l0


def _likelihood_gap(k: int, n: int, p: float) -> float:
    """log L(k/n) - log L(p): how far p is from the best explanation of the data."""
    if n == 0:
        return 0.0
    return _log_likelihood(k, n, k / n) - _log_likelihood(k, n, p)


def _chi2_1(confidence: float) -> float:
    """Quantile of chi-square with one degree of freedom."""
    return NormalDist().inv_cdf(0.5 + confidence / 2) ** 2


@functools.lru_cache(maxsize=8192)
def likelihood_ratio_interval(k: int, n: int, critical: float) -> tuple[float, float]:
    """{p : 2 (log L(k/n) - log L(p)) <= critical}, the interval the sequential test inverts."""
    if n == 0:
        return (0.0, 1.0)
    share = k / n

    def edge(outer: float) -> float:
        inner = share
        if _likelihood_gap(k, n, outer) <= critical / 2:
            return outer
        for _ in range(40):
            middle = (inner + outer) / 2
            if _likelihood_gap(k, n, middle) <= critical / 2:
                inner = middle
            else:
                outer = middle
        return inner

    return (edge(0.0), edge(1.0))


@functools.lru_cache(maxsize=8192)
def clopper_pearson(k: int, n: int, tail: float) -> tuple[float, float]:
    """Exact interval with `tail` probability outside on each side: lower bound, upper bound."""
    if n == 0:
        return (0.0, 1.0)
    low = 0.0 if k == 0 else _solve(lambda p: _upper_tail(k, n, p) - tail)
    high = 1.0 if k == n else _solve(lambda p: tail - _lower_tail(k, n, p))
    return (low, high)


def _solve(increasing) -> float:
    """The root in (0, 1) of an increasing function, by bisection."""
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if increasing(middle) < 0:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _lower_tail(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summing the shorter side."""
    if k + 1 <= n - k:
        return sum(_pmf(x, n, p) for x in range(0, k + 1))
    return max(0.0, 1 - sum(_pmf(x, n, p) for x in range(k + 1, n + 1)))


def _upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return 1.0 if k <= 0 else max(0.0, 1 - _lower_tail(k - 1, n, p))


def _pmf(x: int, n: int, p: float) -> float:
    if p <= 0.0 or p >= 1.0:
        return float(x == (0 if p <= 0.0 else n))
    return math.exp(math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1)
                    + x * math.log(p) + (n - x) * math.log1p(-p))


# ------------------------------------------------------------------------------------ simulation

def combined(split: SplitDecision, *rates: RateDecision) -> str:
    """A run's decision: fail as soon as one part fails, pass when every part passed."""
    verdicts = [split.verdict, *(rate.verdict for rate in rates)]
    return FAIL if FAIL in verdicts else PASS if all(v == PASS for v in verdicts) else UNDECIDED


def simulate(rng, truth: Mapping[str, float], shares: Mapping[str, float], *, count: int | None = None,
             error_rate: float = 0.0, unmatched_rate: float = 0.0, tolerance: float = DEFAULT_TOLERANCE,
             alpha: float = 0.001, beta: float = DEFAULT_BETA, min_availability: float = DEFAULT_SPLIT_MIN_AVAILABILITY,
             max_unmatched: float = DEFAULT_MAX_UNMATCHED, max_requests: int = DEFAULT_MAX_REQUESTS,
             batch: int = BATCH_SIZE) -> tuple[str, int, SplitDecision, RateDecision]:
    """One probe on a simulated route whose backends get `truth`: (result, requests sent, split, availability).

    Each request fails with `error_rate`, else names no backend with `unmatched_rate`, else goes to
    a backend drawn from `truth`; the decisions are the ones `judge` makes, looked at after every
    `batch` (sequential) or once after `count` requests. result is pass, fail or inconclusive.
    """
    names, weights = list(truth), list(truth.values())
    counts = dict.fromkeys(shares, 0)
    errors = unmatched = sent = 0
    looks: list[dict[str, int]] = []
    planned = count if count is not None else min(batch, max_requests)
    while True:
        while sent < planned:
            sent += 1
            if rng.random() < error_rate:
                errors += 1
            elif rng.random() < unmatched_rate:
                unmatched += 1
            else:
                name = rng.choices(names, weights)[0]
                counts[name] = counts.get(name, 0) + 1
        judged = sum(counts.values()) + unmatched
        if count is not None:
            split = equivalence_split(counts, shares, tolerance, alpha=alpha)
            rates = (fixed_rate(errors, sent, 1 - min_availability, alpha=alpha),
                     fixed_rate(unmatched, judged, max_unmatched, alpha=alpha))
        else:
            looks.append(dict(counts))
            split = sequential_split(looks, shares, tolerance, alpha=alpha, beta=beta)
            rates = (sequential_rate(errors, sent, 1 - min_availability, alpha=alpha, beta=beta),
                     sequential_rate(unmatched, judged, max_unmatched, alpha=alpha, beta=beta))
        result = combined(split, *rates)
        if result != UNDECIDED or count is not None or sent >= max_requests:
            return (result if result != UNDECIDED else "inconclusive"), sent, split, rates[0]
        planned = min(max_requests, planned + batch)
