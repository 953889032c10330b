"""Operating characteristics of the split decisions, next to the old fixed-450 design.

Usage: python benchmarks/split_oc.py [--runs 2000] [--seed 1]

Simulates probes of a route expected at 80/20 (and 50/30/20) whose backends really get the
shares in the first column, with the decisions the probe makes (probe/sequential.py `simulate`):
the sequential test (default), the equivalence test at --count 200, and the fixed-450 design the
probe had before (the exact binomial test at alpha 0.001, 450 requests every time). Prints, per
design and truth, how often it passed, failed and ended inconclusive, and the mean and 95th
percentile of requests sent. docs/statistics.md quotes this table.
"""

from __future__ import annotations

import argparse
import random
import statistics

from kubectl_waypoint.probe.sequential import simulate
from kubectl_waypoint.probe.stats import split_p_value

EXPECTED = {"v1": 0.8, "v2": 0.2}
CASES = [  # (label, truth, expected, error rate)
    ("80/20 healthy", {"v1": 0.8, "v2": 0.2}, EXPECTED, 0.0),
    ("80/20, 0.1% errors", {"v1": 0.8, "v2": 0.2}, EXPECTED, 0.001),
    ("80/20, 5% errors", {"v1": 0.8, "v2": 0.2}, EXPECTED, 0.05),
    ("75/25 (inside)", {"v1": 0.75, "v2": 0.25}, EXPECTED, 0.0),
    ("70/30 (at tolerance)", {"v1": 0.7, "v2": 0.3}, EXPECTED, 0.0),
    ("50/50", {"v1": 0.5, "v2": 0.5}, EXPECTED, 0.0),
    ("50/30/20 healthy", {"a": 0.5, "b": 0.3, "c": 0.2}, {"a": 0.5, "b": 0.3, "c": 0.2}, 0.0),
    ("50/20/30 swapped", {"a": 0.5, "b": 0.2, "c": 0.3}, {"a": 0.5, "b": 0.3, "c": 0.2}, 0.0),
]


def fixed_450(rng: random.Random, truth, expected, error_rate: float) -> tuple[str, int]:
    """The previous design: 450 requests, fail at p <= 0.001 or on any error (min availability 1.0)."""
    names, weights = list(truth), list(truth.values())
    counts = dict.fromkeys(expected, 0)
    errors = 0
    for _ in range(450):
        if rng.random() < error_rate:
            errors += 1
        else:
            name = rng.choices(names, weights)[0]
            counts[name] += 1
    p_value = split_p_value(counts, expected)
    return ("fail" if errors or (p_value is not None and p_value <= 0.001) else "pass"), 450


def row(label: str, design: str, outcomes: list[tuple[str, int]]) -> str:
    runs = len(outcomes)
    sent = sorted(n for _, n in outcomes)
    share = {result: sum(o[0] == result for o in outcomes) / runs for result in ("pass", "fail", "inconclusive")}
    return (f"| {label} | {design} | {share['pass']:.1%} | {share['fail']:.1%} | {share['inconclusive']:.1%} | "
            f"{statistics.mean(sent):.0f} | {sent[int(0.95 * runs) - 1]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"{args.runs} simulated runs per line, seed {args.seed}, alpha 0.001, tolerance 0.10, beta 0.10, "
          "min availability 0.99 (fixed-450: 1.0)\n")
    print("| truth | design | pass | fail | inconclusive | mean requests | p95 requests |")
    print("|---|---|---|---|---|---|---|")
    for label, truth, expected, error_rate in CASES:
        designs = {
            "sequential": lambda rng: simulate(rng, truth, expected, error_rate=error_rate)[:2],
            "--count 200": lambda rng: simulate(rng, truth, expected, error_rate=error_rate, count=200)[:2],
            "fixed 450 (before)": lambda rng: fixed_450(rng, truth, expected, error_rate),
        }
        for design, run in designs.items():
            rng = random.Random(args.seed)
            print(row(label, design, [run(rng) for _ in range(args.runs)]))


if __name__ == "__main__":
    main()
