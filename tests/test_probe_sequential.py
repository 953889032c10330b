"""The split decisions (probe/sequential.py): exact distributions, then many seeded simulated runs.

Every error rate is asserted against a bound computed here from the binomial distribution of the
number of runs that go wrong, so a test fails only when the design is off, not by bad luck
(each bound is exceeded by chance with probability below 1e-4).
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from kubectl_waypoint.errors import BadInput
from kubectl_waypoint.probe.command import ProbeOptions, check_options
from kubectl_waypoint.probe.sequential import (
    DEFAULT_BETA,
    DEFAULT_MAX_REQUESTS,
    EQUIVALENCE_LEVEL,
    FAIL,
    PASS,
    check_design,
    clopper_pearson,
    equivalence_split,
    fixed_rate,
    likelihood_ratio_interval,
    sequential_rate,
    sequential_split,
    simulate,
    smallest_equivalence_count,
    smallest_sequential_count,
)

ALPHA = 0.001
EIGHTY_TWENTY = {"reviews-v1": 0.8, "reviews-v2": 0.2}
CHANCE = 1e-4  # how often a bound below may be exceeded by luck alone


def most_by_chance(runs: int, rate: float) -> int:
    """The largest count of bad runs that `rate` explains: P(Binomial(runs, rate) > it) < CHANCE."""
    total, k = 0.0, 0
    while True:
        total += math.comb(runs, k) * rate**k * (1 - rate) ** (runs - k)
        if 1 - total < CHANCE:
            return k
        k += 1


def fewest_by_chance(runs: int, rate: float) -> int:
    """The smallest count of good runs that `rate` explains: P(Binomial(runs, rate) < it) < CHANCE."""
    return runs - most_by_chance(runs, 1 - rate)


def runs_of(truth, shares=EIGHTY_TWENTY, runs=600, seed=1, **settings):
    rng = random.Random(seed)
    return [simulate(rng, truth, shares, alpha=ALPHA, **settings) for _ in range(runs)]


def results(outcomes, result):
    return sum(outcome[0] == result for outcome in outcomes)


# --- exact pieces --------------------------------------------------------------------------------


def test_clopper_pearson_matches_r():
    # R: binom.test(7, 20)$conf.int -> 0.1539092 0.5921885; binom.test(0, 20) -> 0 0.1684335
    assert clopper_pearson(7, 20, 0.025) == pytest.approx((0.1539092, 0.5921885), abs=1e-7)
    assert clopper_pearson(0, 20, 0.025) == pytest.approx((0.0, 0.1684335), abs=1e-7)
    assert clopper_pearson(20, 20, 0.025) == pytest.approx((0.8315665, 1.0), abs=1e-7)


def test_the_likelihood_ratio_interval_is_where_the_likelihood_drops_by_half_the_critical_value():
    k, n, critical = 30, 100, 10.83
    low, high = likelihood_ratio_interval(k, n, critical)

    def drop(p):
        return 2 * (k * math.log(k / n / p) + (n - k) * math.log((1 - k / n) / (1 - p)))

    assert drop(low) == pytest.approx(critical, rel=1e-6) and drop(high) == pytest.approx(critical, rel=1e-6)
    assert likelihood_ratio_interval(0, 50, critical)[0] == 0.0


def test_a_weight_0_backend_fails_on_its_first_hit_and_passes_after_enough_misses():
    shares = {"v1": 1.0, "v2": 0.0}
    assert sequential_split([{"v1": 9, "v2": 1}], shares, alpha=ALPHA).verdict == FAIL
    # (1 - 0.1)^n <= beta: 22 misses in a row show a 10% leak would have shown up.
    assert sequential_split([{"v1": 21, "v2": 0}], shares, alpha=ALPHA).verdict != PASS
    assert sequential_split([{"v1": 22, "v2": 0}], shares, alpha=ALPHA).verdict == PASS


def ideal(shares, n):
    """The sample closest to the weights (largest remainders get the rounding)."""
    floors = {name: math.floor(share * n) for name, share in shares.items()}
    for name in sorted(shares, key=lambda name: floors[name] - shares[name] * n)[:n - sum(floors.values())]:
        floors[name] += 1
    return floors


@pytest.mark.parametrize("shares", [EIGHTY_TWENTY, {"a": 0.5, "b": 0.3, "c": 0.2}, {"a": 1.0, "b": 0.0}])
def test_smallest_counts_are_the_first_at_which_a_perfect_sample_passes(shares):
    first_equivalent = next(n for n in range(1, 1000)
                            if equivalence_split(ideal(shares, n), shares, alpha=ALPHA).verdict == PASS)
    first_sequential = next(n for n in range(1, 1000)
                            if sequential_split([ideal(shares, n)], shares, alpha=ALPHA).verdict == PASS)
    assert smallest_equivalence_count(shares, 0.10) == first_equivalent
    assert smallest_sequential_count(shares, 0.10, ALPHA) == first_sequential


def test_smallest_counts_of_80_20():
    assert smallest_equivalence_count(EIGHTY_TWENTY, 0.10) == 57
    assert smallest_sequential_count(EIGHTY_TWENTY, 0.10, ALPHA) == 82


# --- the sequential test --------------------------------------------------------------------------


@pytest.mark.parametrize(("truth", "runs"), [(EIGHTY_TWENTY, 600), ({"a": 0.5, "b": 0.3, "c": 0.2}, 300),
                                             ({"a": 0.5, "b": 0.5}, 600)])
def test_healthy_splits_fail_less_often_than_alpha(truth, runs):
    outcomes = runs_of(truth, shares=truth, runs=runs, seed=11)
    failures = results(outcomes, "fail")
    print(f"{truth}: {failures} false failures in {len(outcomes)} runs")
    assert failures <= most_by_chance(len(outcomes), ALPHA)


def test_a_healthy_80_20_route_costs_well_under_200_requests():
    outcomes = runs_of(EIGHTY_TWENTY, runs=800, seed=20240601)
    sent = sorted(outcome[1] for outcome in outcomes)
    mean, p95 = statistics.mean(sent), sent[int(0.95 * len(sent)) - 1]
    print(f"healthy 80/20: mean {mean:.0f} requests, p95 {p95}, pass {results(outcomes, 'pass')}/{len(outcomes)}")
    # The standard error of the mean is about 80 / sqrt(800) = 3: 160 is a margin of many.
    assert mean < 160 and p95 <= 350
    assert results(outcomes, "pass") >= fewest_by_chance(len(outcomes), 0.97)


def test_a_50_50_route_against_80_20_fails_in_well_under_100_requests():
    outcomes = runs_of({"reviews-v1": 0.5, "reviews-v2": 0.5}, runs=500, seed=7)
    sent = [outcome[1] for outcome in outcomes]
    print(f"50/50 vs 80/20: failed {results(outcomes, 'fail')}/{len(outcomes)}, mean {statistics.mean(sent):.0f}")
    assert results(outcomes, "fail") == len(outcomes)
    assert statistics.mean(sent) < 75 and max(sent) <= 150


def test_a_route_at_the_tolerance_passes_at_most_beta_of_the_time():
    outcomes = runs_of({"reviews-v1": 0.7, "reviews-v2": 0.3}, runs=600, seed=5)
    passes = results(outcomes, "pass")
    print(f"70/30 vs 80/20: passed {passes}/{len(outcomes)}, failed {results(outcomes, 'fail')}")
    assert passes <= most_by_chance(len(outcomes), DEFAULT_BETA)
    assert results(outcomes, "fail") >= fewest_by_chance(len(outcomes), 0.75)


def test_availability_at_0_1_percent_errors_passes_and_at_5_percent_fails_naming_it():
    few = runs_of(EIGHTY_TWENTY, runs=300, seed=3, error_rate=0.001)
    many = runs_of(EIGHTY_TWENTY, runs=300, seed=4, error_rate=0.05)
    print(f"0.1% errors: pass {results(few, 'pass')}/300; 5% errors: fail {results(many, 'fail')}/300, "
          f"mean {statistics.mean(o[1] for o in many):.0f} requests")
    assert results(few, "fail") <= most_by_chance(300, 2 * ALPHA)
    assert results(few, "pass") >= fewest_by_chance(300, 0.97)
    assert results(many, "fail") >= fewest_by_chance(300, 1 - DEFAULT_BETA - 0.02)
    # 5% errors fail on availability, not on the split, which stays healthy.
    assert all(o[3].verdict == FAIL for o in many if o[0] == "fail")
    assert sum(o[2].verdict == FAIL for o in many) <= most_by_chance(300, ALPHA)


def test_a_run_stops_only_when_split_and_availability_are_both_decided():
    outcomes = runs_of(EIGHTY_TWENTY, runs=300, seed=8, error_rate=0.05)
    # A healthy split is decided long before 5% errors can be shown: those runs went on for them.
    waited = [o for o in outcomes if o[0] == "fail" and o[2].verdict == PASS]
    assert len(waited) >= len(outcomes) // 2
    split_alone = smallest_sequential_count(EIGHTY_TWENTY, 0.10, ALPHA)
    assert statistics.mean(o[1] for o in waited) > split_alone


def test_sequential_intervals_agree_with_the_verdict():
    for truth, seed in ((EIGHTY_TWENTY, 1), ({"reviews-v1": 0.7, "reviews-v2": 0.3}, 2),
                        ({"reviews-v1": 0.55, "reviews-v2": 0.45}, 3)):
        for result, _, split, _ in runs_of(truth, runs=200, seed=seed):
            for backend in split.backends:
                inside = backend.low <= backend.expected <= backend.high
                if backend.verdict == PASS:
                    assert inside, (result, backend)
                if backend.verdict == FAIL:
                    assert not inside, (result, backend)


def test_cap_without_a_decision_is_inconclusive():
    outcomes = runs_of({"reviews-v1": 0.72, "reviews-v2": 0.28}, runs=100, seed=9, max_requests=100)
    assert results(outcomes, "inconclusive") > 0
    assert all(o[1] <= 100 for o in outcomes)


# --- the equivalence test of --count --------------------------------------------------------------


def test_count_200_passes_a_correct_route_about_9_in_10_and_a_route_at_the_tolerance_1_in_20():
    correct = runs_of(EIGHTY_TWENTY, runs=600, seed=21, count=200)
    edge = runs_of({"reviews-v1": 0.7, "reviews-v2": 0.3}, runs=600, seed=22, count=200)
    print(f"--count 200: 80/20 passes {results(correct, 'pass')}/600, 70/30 passes {results(edge, 'pass')}/600")
    assert results(correct, "pass") >= fewest_by_chance(600, 0.88)
    assert results(correct, "fail") <= most_by_chance(600, ALPHA)
    assert results(edge, "pass") <= most_by_chance(600, EQUIVALENCE_LEVEL)
    assert all(o[1] == 200 for o in correct + edge)


def test_count_200_fails_a_50_50_route_and_shows_the_interval_outside_the_band():
    outcomes = runs_of({"reviews-v1": 0.5, "reviews-v2": 0.5}, runs=300, seed=23, count=200)
    assert results(outcomes, "fail") >= fewest_by_chance(300, 0.97)
    for result, _, split, _ in outcomes:
        for backend in split.backends:
            band = (backend.expected - split.tolerance, backend.expected + split.tolerance)
            if backend.verdict == FAIL:
                assert backend.high < band[0] or backend.low > band[1]
                assert backend.confidence == pytest.approx(1 - ALPHA)
            if backend.verdict == PASS:
                assert band[0] <= backend.low and backend.high <= band[1]
                assert backend.confidence == pytest.approx(1 - 2 * EQUIVALENCE_LEVEL)


def test_fixed_rates_fail_only_when_their_bound_is_beyond_the_limit():
    assert fixed_rate(1, 1000, 0.01, alpha=ALPHA).verdict == PASS
    shown = fixed_rate(50, 1000, 0.01, alpha=ALPHA)
    assert shown.verdict == FAIL and shown.bound > 0.01
    assert fixed_rate(15, 1000, 0.01, alpha=ALPHA).verdict == PASS  # 1.5% is not shown above 1% at 99.9%
    assert sequential_rate(0, 57, 0.01, alpha=ALPHA).verdict == PASS
    assert sequential_rate(1, 10, 0.0, alpha=ALPHA).verdict == FAIL  # --min-availability 1: one error fails


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "words"), [
    ({"tolerance": 0.5}, "--tolerance 0.5 is not between 0 and 0.5"),
    ({"tolerance": 0}, "--tolerance 0 is not between 0 and 0.5"),
    ({"max_unmatched": 1.5}, "--max-unmatched 1.5 is not between 0 and 1"),
    ({"min_availability": -0.1}, "--min-availability -0.1 is not between 0 and 1"),
    ({"max_requests": 0}, "--max-requests 0 is not a positive number"),
    ({"expect_split": "a=80,b"}, "gives weights to some backends but not to b; give every backend a weight"),
])
def test_bad_design_input_is_refused_with_what_would_work(options, words):
    with pytest.raises(BadInput, match=words):
        check_options(ProbeOptions(client="deploy/curl", url="http://a:80/", **options))


def test_a_split_without_any_weight_means_equal_shares():
    checked = check_options(ProbeOptions(client="deploy/curl", url="http://a:80/", expect_split="a,b"))
    assert checked.weights == {"a": None, "b": None}


def test_check_design_names_the_default():
    with pytest.raises(BadInput, match="the default is 0.1"):
        check_design(0.7, ALPHA)
    assert DEFAULT_MAX_REQUESTS == 450
