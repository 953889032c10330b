"""Statistics of a probe: expected shares, the split test, its power, latency and availability.

Pure functions over counts and timings; stdlib only (the plugin ships as one small executable).

The split test. Each backend with weight > 0 gets an exact two-sided binomial test of its
count against its expected share (R's `binom.test` rule: sum the probabilities of all outcomes
no more likely than the observed one). With three or more backends the smallest p-value is
Bonferroni-adjusted (times the number of backends); with two, both tests are the same test
and no adjustment is made. This is a level-alpha goodness-of-fit test of the whole split that
stays exact where chi-square is not (small expected counts, alpha = 0.001 in the far tail),
its power can be computed for the very test that runs, and a failure names the backend.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import re
from dataclasses import dataclass
from statistics import NormalDist
from typing import Mapping, Sequence

from kubectl_waypoint.errors import BadInput

DEFAULT_ALPHA = 0.001
DETECTABLE_DEVIATION = 0.10
TARGET_POWER = 0.90

_WEIGHT_ITEM = re.compile(r"([^\s=,]+)(?:=(\S*))?")
_DECIMAL = re.compile(r"\d+(?:\.\d+)?")


def parse_weights(text: str) -> dict[str, float | None]:
    """`reviews-v1=80,reviews-v2=20` -> {name: weight}; a bare name has no weight (None)."""
    weights: dict[str, float | None] = {}
    for item in text.split(","):
        match = _WEIGHT_ITEM.fullmatch(item.strip())
        if not match:
            raise BadInput(f"Split {text!r} is malformed at {item.strip()!r}; write NAME=WEIGHT,NAME=WEIGHT.")
        name, weight = match.groups()
        if weight is not None and not _DECIMAL.fullmatch(weight):
            raise BadInput(f"Weight {weight!r} of backend {name} is not a non-negative number; write {name}=80.")
        if name in weights:
            raise BadInput(f"Backend {name} appears twice in split {text!r}; list each backend once.")
        weights[name] = None if weight is None else float(weight)
    return weights


def expected_shares(weights: Mapping[str, float | None]) -> dict[str, float]:
    """Share of traffic per backend, as Gateway API routes it: unset weight = 1, share = w / sum."""
    resolved = {name: 1.0 if weight is None else float(weight) for name, weight in weights.items()}
    if not resolved:
        raise BadInput("The expected split names no backend; pass --expect-split NAME=WEIGHT,...")
    negative = [name for name, weight in resolved.items() if weight < 0 or not math.isfinite(weight)]
    if negative:
        raise BadInput(f"Backend {negative[0]} has an invalid weight; weights are numbers of 0 or more.")
    total = sum(resolved.values())
    if total == 0:
        raise BadInput("Every backend has weight 0, so Istio answers HTTP 500; give one backend a weight.")
    return {name: weight / total for name, weight in resolved.items()}


def binomial_pmf(k: int, n: int, p: float) -> float:
    """P(X = k) for X ~ Binomial(n, p), computed in log space so large n cannot overflow."""
    if p in (0.0, 1.0):
        return 1.0 if k == (0 if p == 0.0 else n) else 0.0
    log_pmf = (
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        + k * math.log(p) + (n - k) * math.log1p(-p)
    )
    return math.exp(log_pmf)


def _pmf_table(n: int, p: float) -> list[float]:
    """P(X = x) for every x in 0..n: one lgamma at the mode, then the ratio recurrence outward."""
    if p in (0.0, 1.0):
        return [binomial_pmf(x, n, p) for x in range(n + 1)]
    mode = min(n, math.floor((n + 1) * p))
    table = [0.0] * (n + 1)
    table[mode] = binomial_pmf(mode, n, p)
    odds = p / (1 - p)
    for x in range(mode, n):
        table[x + 1] = table[x] * (n - x) / (x + 1) * odds
    for x in range(mode, 0, -1):
        table[x - 1] = table[x] * x / (n - x + 1) / odds
    return table


# Outcomes within this relative tolerance of the observed probability count as equally extreme
# (rounding must not decide a p-value), as in R's binom.test.
_TIE = 1 + 1e-7


def binomial_test(k: int, n: int, p: float) -> float:
    """Exact two-sided p-value of k successes in n trials under share p (as R's binom.test)."""
    table = _pmf_table(n, p)
    limit = table[k] * _TIE
    return min(1.0, sum(q for q in table if q <= limit))


def binomial_power(n: int, p0: float, p1: float, level: float) -> float:
    """Probability that `binomial_test` rejects share p0 at `level` when the true share is p1."""
    table = _pmf_table(n, p0)
    ordered = sorted(table)
    cumulative = list(itertools.accumulate(ordered))
    alternative = _pmf_table(n, p1)
    return sum(
        alternative[x]
        for x, q in enumerate(table)
        if cumulative[bisect.bisect_right(ordered, q * _TIE) - 1] <= level
    )


def split_p_value(counts: Mapping[str, int], shares: Mapping[str, float]) -> float | None:
    """p-value of the observed counts under the expected shares (backends with share > 0 only).

    None when fewer than two backends carry traffic: there is no split to test.
    """
    tested = [name for name, share in shares.items() if share > 0]
    if len(tested) < 2:
        return None
    n = sum(counts.get(name, 0) for name in tested)
    if n == 0:
        return None
    p_values = [binomial_test(counts.get(name, 0), n, shares[name]) for name in tested]
    return min(1.0, _tests_made(len(tested)) * min(p_values))


def required_sample_size(
    shares: Mapping[str, float],
    alpha: float = DEFAULT_ALPHA,
    deviation: float = DETECTABLE_DEVIATION,
    power: float = TARGET_POWER,
) -> int:
    """Smallest sample at which `split_p_value` catches a `deviation` in any one share with `power`.

    Worst case over backends and both directions (share - deviation and share + deviation,
    where that is still a share); the direction toward 50% usually needs more requests, as
    the variance p(1 - p) grows there. The power is the exact power of the binomial test that
    runs (the normal approximation is up to 5 points optimistic at alpha = 0.001 and only
    brackets the search). Power zigzags slightly with n for a discrete test: it reaches the
    target at the returned n, and a few larger n may fall a fraction of a point short.
    A weight-0 backend is covered too: a leak of `deviation` to it shows up as at least one
    hit with `power` once (1 - deviation)^n <= 1 - power.
    """
    positive = tuple(sorted(share for share in shares.values() if share > 0))
    needed = _required_for_split(positive, alpha, deviation, power) if len(positive) >= 2 else 1
    if len(positive) < len(shares):
        needed = max(needed, math.ceil(math.log(1 - power) / math.log(1 - deviation) - 1e-9))
    return needed


@functools.lru_cache(maxsize=64)
def _required_for_split(positive: tuple[float, ...], alpha: float, deviation: float, power: float) -> int:
    level = alpha / _tests_made(len(positive))
    z_alpha, z_power = NormalDist().inv_cdf(1 - level / 2), NormalDist().inv_cdf(power)
    needed = 1
    # With two backends the second backend's tests mirror the first's.
    for p0 in positive[:1] if len(positive) == 2 else positive:
        for p1 in (p0 - deviation, p0 + deviation):
            if not 0 <= p1 <= 1:
                continue
            root = z_alpha * math.sqrt(p0 * (1 - p0)) + z_power * math.sqrt(p1 * (1 - p1))
            guess = max(2, math.ceil((root / deviation) ** 2))
            low, high = 1, guess
            while binomial_power(high, p0, p1, level) < power:
                low, high = high, high * 2
            while high - low > 1:
                middle = (low + high) // 2
                if binomial_power(middle, p0, p1, level) >= power:
                    high = middle
                else:
                    low = middle
            needed = max(needed, high)
    return needed


def _tests_made(backends: int) -> int:
    """Bonferroni factor: with two backends, both binomial tests are one and the same test."""
    return 1 if backends <= 2 else backends


@dataclass(frozen=True)
class Latency:
    """Latency percentiles in milliseconds."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def nearest_rank(values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `percent`% of values <= it.

    Always an observed value (no interpolation between two requests' latencies).
    """
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(durations_s: Sequence[float]) -> Latency | None:
    """p50, p90, p99 and max of request durations, in milliseconds; None without durations."""
    if not durations_s:
        return None
    ms = [d * 1000 for d in durations_s]
    return Latency(nearest_rank(ms, 50), nearest_rank(ms, 90), nearest_rank(ms, 99), max(ms))


def paced_start_times(durations_s: Sequence[float], interval_s: float) -> list[float]:
    """When each request started, relative to the first, under curl's `--rate`.

    curl starts the next transfer `interval_s` after the previous one started, or as soon as
    it ends when it took longer (measured: no catching up afterwards). Derived from curl's
    own timings because curl buffers its write-out lines, so their arrival time lags.
    """
    starts, at = [], 0.0
    for duration in durations_s:
        starts.append(at)
        at += max(interval_s, duration)
    return starts


def longest_outage(starts_s: Sequence[float], durations_s: Sequence[float], ok: Sequence[bool]) -> float:
    """Longest span in which every request failed, in seconds.

    A run of failed requests lasts from the start of its first request to the start of the
    next successful one, or to the end of its last request when none followed.
    """
    longest, first_failed_at = 0.0, None
    for start, duration, good in zip(starts_s, durations_s, ok):
        if not good and first_failed_at is None:
            first_failed_at = start
        elif good and first_failed_at is not None:
            longest = max(longest, start - first_failed_at)
            first_failed_at = None
        last_end = start + duration
    if first_failed_at is not None:
        longest = max(longest, last_end - first_failed_at)
    return longest
