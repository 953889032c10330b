"""Statistics of the probe: distributions against known values, and Monte Carlo runs of judge()."""

from __future__ import annotations

import math
import random
from fractions import Fraction
from math import comb

import pytest

from kubectl_waypoint.errors import BadInput
from kubectl_waypoint.probe.curl import Response
from kubectl_waypoint.probe.expectations import Expectation, default_count, judge
from kubectl_waypoint.probe.stats import (
    DEFAULT_ALPHA,
    binomial_pmf,
    binomial_power,
    binomial_test,
    expected_shares,
    latency_summary,
    longest_outage,
    nearest_rank,
    paced_start_times,
    parse_weights,
    required_sample_size,
    split_p_value,
)

# --- distributions against known values ---------------------------------------------------------


def exact_two_sided(k: int, n: int, p: Fraction) -> Fraction:
    """binom.test's p-value in exact rational arithmetic: the reference for binomial_test."""
    pmf = [comb(n, x) * p**x * (1 - p) ** (n - x) for x in range(n + 1)]
    return sum(q for q in pmf if q <= pmf[k])


def test_binomial_test_matches_r_on_mendels_peas():
    # R: binom.test(682, 925, p = 3/4) -> p-value = 0.3825
    assert binomial_test(682, 925, 0.75) == pytest.approx(0.3825, abs=5e-5)


@pytest.mark.parametrize(
    ("k", "n", "p"),
    [(0, 10, "1/2"), (2, 10, "1/2"), (5, 10, "1/2"), (16, 20, "4/5"), (10, 20, "4/5"), (20, 20, "4/5"),
     (3, 40, "1/5"), (0, 30, "1/20"), (7, 30, "1/20"), (1, 7, "1/3")],
)
def test_binomial_test_equals_exact_rational_arithmetic(k, n, p):
    assert binomial_test(k, n, float(Fraction(p))) == pytest.approx(float(exact_two_sided(k, n, Fraction(p))), rel=1e-9)


def test_binomial_test_textbook_values():
    assert binomial_test(0, 10, 0.5) == pytest.approx(2 / 1024)
    assert binomial_test(2, 10, 0.5) == pytest.approx(112 / 1024)
    assert binomial_test(5, 10, 0.5) == pytest.approx(1.0)


def test_binomial_pmf_does_not_overflow_at_large_n():
    assert sum(binomial_pmf(k, 5000, 0.8) for k in range(5001)) == pytest.approx(1.0)
    assert binomial_pmf(4000, 5000, 0.8) == pytest.approx(0.014104, rel=1e-3)


def test_binomial_power_of_the_two_sided_test():
    # n = 10, p0 = 1/2, level 0.05: the rejection region is {0, 1, 9, 10}, size 22/1024.
    assert binomial_power(10, 0.5, 0.5, 0.05) == pytest.approx(22 / 1024)
    assert binomial_power(10, 0.5, 0.9, 0.05) == pytest.approx(sum(binomial_pmf(k, 10, 0.9) for k in (0, 1, 9, 10)))


def test_parse_weights():
    assert parse_weights("reviews-v1=80,reviews-v2=20") == {"reviews-v1": 80.0, "reviews-v2": 20.0}
    assert parse_weights("a=0.8, b=0.2,c") == {"a": 0.8, "b": 0.2, "c": None}


@pytest.mark.parametrize("text", ["", "a=", "a=-1", "a=1,a=2", "=5", "a=x", "a=1;b=2", "a=1,,b=2", "a=1e3", "a b=1"])
def test_malformed_weights_are_bad_input(text):
    with pytest.raises(BadInput):
        parse_weights(text)


def test_expected_shares_follow_gateway_api_weights():
    assert expected_shares({"v1": 80, "v2": 20}) == {"v1": 0.8, "v2": 0.2}
    assert expected_shares({"v1": None, "v2": None, "v3": 0}) == {"v1": 0.5, "v2": 0.5, "v3": 0.0}
    assert expected_shares({"v1": 3, "v2": None}) == {"v1": 0.75, "v2": 0.25}


@pytest.mark.parametrize(
    ("weights", "message"), [({"v1": 0, "v2": 0}, "500"), ({"v1": -1, "v2": 2}, "v1"), ({}, "no backend")]
)
def test_impossible_splits_are_bad_input(weights, message):
    with pytest.raises(BadInput, match=message):
        expected_shares(weights)


# --- the split test and its power ---------------------------------------------------------------


def test_split_p_value_is_bonferroni_adjusted_from_three_backends():
    shares = {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}
    counts = {"a": 40, "b": 30, "c": 20}
    smallest = min(binomial_test(counts[n], 90, 1 / 3) for n in shares)
    assert split_p_value(counts, shares) == pytest.approx(3 * smallest)
    two = {"a": 0.8, "b": 0.2}
    assert split_p_value({"a": 70, "b": 30}, two) == pytest.approx(binomial_test(70, 100, 0.8))
    assert split_p_value({"a": 5}, {"a": 1.0, "b": 0.0}) is None


@pytest.mark.parametrize(
    ("weights", "backend", "worst"),
    [({"v1": 80, "v2": 20}, 0.8, 0.7), ({"v1": 50, "v2": 50}, 0.5, 0.4), ({"v1": 95, "v2": 5}, 0.95, 0.85)],
)
def test_required_sample_size_is_the_smallest_n_with_90_percent_exact_power(weights, backend, worst):
    n = required_sample_size(expected_shares(weights))
    assert binomial_power(n, backend, worst, DEFAULT_ALPHA) >= 0.90
    assert binomial_power(n - 1, backend, worst, DEFAULT_ALPHA) < 0.90


def test_required_sample_size_values():
    assert required_sample_size(expected_shares({"v1": 80, "v2": 20})) == 384
    # A 10% leak to a weight-0 backend shows within 22 requests with 90% probability.
    assert required_sample_size(expected_shares({"v1": 1, "v2": 0})) == 22
    assert required_sample_size(expected_shares({"v1": 1})) == 1
    three = required_sample_size(expected_shares({"a": 1, "b": 1, "c": 1}))
    two = required_sample_size(expected_shares({"a": 1, "b": 1}))
    assert three > two  # three tests share alpha


def test_the_split_test_rejects_a_correct_split_less_often_than_alpha():
    n = default_count(Expectation.split({"v1": 80, "v2": 20}))
    assert binomial_power(n, 0.8, 0.8, DEFAULT_ALPHA) <= DEFAULT_ALPHA


# --- latency and availability -------------------------------------------------------------------


def test_nearest_rank_percentiles():
    values = [15, 20, 35, 40, 50]
    assert [nearest_rank(values, p) for p in (5, 30, 40, 50, 100)] == [15, 20, 20, 35, 50]
    summary = latency_summary([i / 1000 for i in range(1, 101)])
    assert (summary.p50_ms, summary.p90_ms, summary.p99_ms, summary.max_ms) == pytest.approx((50, 90, 99, 100))
    assert latency_summary([]) is None


def test_paced_start_times_follow_curls_rate():
    # measured with curl 7.88: a slow transfer delays the next one, and the schedule does not catch up
    assert paced_start_times([0.1, 1.2, 0.1, 0.1], 0.5) == pytest.approx([0.0, 0.5, 1.7, 2.2])


def test_longest_outage():
    starts = [0, 1, 2, 3, 4, 5, 6]
    durations = [0.1] * 7
    assert longest_outage(starts, durations, [True, False, False, True, False, True, True]) == 2
    assert longest_outage(starts, durations, [True, True, True, True, False, False, False]) == pytest.approx(2.1)
    assert longest_outage(starts, durations, [True] * 7) == 0


# --- Monte Carlo through judge() ----------------------------------------------------------------


def page(name: str) -> Response:
    return Response("200", 0, f"<html><p>Reviews served by {name}</p></html>\n".encode(), 0.02, True)


def simulate(rng: random.Random, true_shares: dict[str, float], count: int) -> list[Response]:
    pages = [page(name) for name in true_shares]
    return rng.choices(pages, weights=list(true_shares.values()), k=count)


def run(weights, true_shares, count, runs, seed):
    expectation = Expectation.split(weights)
    rng = random.Random(seed)
    return [judge(expectation, simulate(rng, true_shares, count), sent=count).result for _ in range(runs)]


def test_correct_routing_rarely_fails_at_the_default_count():
    weights = {"reviews-v1": 80, "reviews-v2": 20}
    count = default_count(Expectation.split(weights))  # what verify sends: an equivalence test of 450
    results = run(weights, {"reviews-v1": 0.8, "reviews-v2": 0.2}, count, 1000, seed=20240601)
    false_failures = results.count("fail") / len(results)
    print(f"80/20 at --count {count}: false-failure rate {false_failures:.2%} over {len(results)} runs")
    assert false_failures <= 0.003
    assert results.count("pass") >= 990


def rejection_probability_of_three_backends(shares: list[float], n: int, alpha: float) -> float:
    """Exact probability that the split test fails a correct three-way split: sum over all outcomes."""
    p_values = [[binomial_test(x, n, share) for x in range(n + 1)] for share in shares]
    log_factorial = [math.lgamma(i + 1) for i in range(n + 1)]
    total = 0.0
    for x1 in range(n + 1):
        for x2 in range(n + 1 - x1):
            x3 = n - x1 - x2
            if 3 * min(p_values[0][x1], p_values[1][x2], p_values[2][x3]) <= alpha:
                total += math.exp(
                    log_factorial[n] - log_factorial[x1] - log_factorial[x2] - log_factorial[x3]
                    + x1 * math.log(shares[0]) + x2 * math.log(shares[1]) + x3 * math.log(shares[2])
                )
    return total


def test_the_three_backend_test_fails_a_correct_split_less_often_than_alpha():
    n = default_count(Expectation.split({"v1": 50, "v2": 30, "v3": 20}))
    assert rejection_probability_of_three_backends([0.5, 0.3, 0.2], n, DEFAULT_ALPHA) <= DEFAULT_ALPHA


def test_a_single_hit_on_a_weight_0_backend_fails():
    responses = [page("reviews-v1")] * 300 + [page("reviews-v2")] * 99 + [page("reviews-v3")]
    verdict = judge(Expectation.split({"reviews-v1": 75, "reviews-v2": 25, "reviews-v3": 0}), responses, sent=400)
    assert verdict.result == "fail"
    assert verdict.backends == {"reviews-v1": 300, "reviews-v2": 99, "reviews-v3": 1, "unmatched": 0}
    assert any("1 response came from reviews-v3 (by their bodies), which has weight 0" in reason
               for reason in verdict.reasons)
