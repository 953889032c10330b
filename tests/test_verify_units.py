"""The verify machinery without a cluster: catalogue, prerequisites, retries, probe-config, renderers."""

from __future__ import annotations

import io
import math
import os
import random
import re
from pathlib import Path

import pytest

from kubectl_waypoint.checks.catalogue import CheckSpec, Catalogue, Category, load_catalogue
from kubectl_waypoint.checks.judges import JUDGES
from kubectl_waypoint.checks.probe_config import parse_probe_config
from kubectl_waypoint.checks.runner import Outcome, VerifyRun, run_checks, run_until
from kubectl_waypoint.checks.traffic import family_alpha
from kubectl_waypoint.probe.stats import split_p_value
from kubectl_waypoint.errors import BadInput
from kubectl_waypoint.render.text import Style
from kubectl_waypoint.render.verify import ASCII_GLYPHS, glyphs_for, render_verify
from kubectl_waypoint.report import verify_report

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"
ORIGIN = {"generatedAt": "2026-01-02T03:04:05Z", "context": "test", "server": "https://192.0.2.1:6443",
          "pluginVersion": "v0.0.0 (test)"}
UTF8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")


def test_every_catalogue_check_has_a_judge_and_a_docs_section():
    catalogue = load_catalogue()
    assert [c.id for c in catalogue.checks] == list(JUDGES)
    docs = (ROOT / "docs" / "checks.md").read_text()
    categories = {c.id for c in catalogue.categories}
    for spec in catalogue.checks:
        assert spec.category in categories
        assert f'<a id="{spec.id}"></a>' in docs, spec.id
        assert re.fullmatch(r"[a-z0-9-]+", spec.id) and spec.hint.strip()
        for need in spec.needs:
            assert [c.id for c in catalogue.checks].index(need) < [c.id for c in catalogue.checks].index(spec.id)


TWO = Catalogue(
    (Category("first", "First"), Category("second", "Second")),
    (CheckSpec("alpha", "first", "alpha works", "fix alpha"),
     CheckSpec("beta", "second", "beta works", "fix beta", needs=("alpha",), retry=True)),
)


def judges(alpha: list[Outcome], beta: list[Outcome]):
    return {"alpha": lambda facts: alpha, "beta": lambda facts: beta}


def test_a_failed_prerequisite_skips_with_the_reason():
    results = run_checks(TWO, list(TWO.checks), None, judges([Outcome("fail", "-", "broken")],
                                                            [Outcome("pass", "-", "fine")]))
    assert [(r.id, r.status) for r in results] == [("alpha", "fail"), ("beta", "skip")]
    assert results[1].message == "skipped: alpha did not pass"


def test_an_unselected_prerequisite_still_gates_but_is_not_reported():
    results = run_checks(TWO, [TWO.check("beta")], None, judges([Outcome("fail", "-", "broken")], []))
    assert [(r.id, r.status) for r in results] == [("beta", "skip")]


def test_select_by_category_and_id_and_unknown_names():
    assert [c.id for c in TWO.select(["second"], [])] == ["beta"]
    assert [c.id for c in TWO.select([], ["alpha"])] == ["beta"]
    with pytest.raises(BadInput, match='"gamma"'):
        TWO.select(["gamma"], [])


def test_wait_reruns_only_what_failed_until_the_deadline():
    now = [0.0]
    calls = {"alpha": 0, "beta": 0}

    def alpha(facts):
        calls["alpha"] += 1
        return [Outcome("pass", "-", "ok")]

    def beta(facts):
        calls["beta"] += 1
        return [Outcome("pass" if calls["beta"] >= 3 else "fail", "-", "settling")]

    def sleep(seconds):
        now[0] += seconds

    run = run_until(TWO, list(TWO.checks), lambda: None, {"alpha": alpha, "beta": beta}, 60, clock=lambda: now[0],
                    sleep=sleep)
    assert run.result == "pass" and run.attempts == 3 and calls == {"alpha": 1, "beta": 3}
    gave_up = run_until(TWO, list(TWO.checks), lambda: None,
                        judges([Outcome("pass", "-", "ok")], [Outcome("fail", "-", "never")]), 12,
                        clock=lambda: now[0], sleep=sleep)
    assert gave_up.result == "fail" and gave_up.attempts == 4  # 0, 5, 10, 12 s


def test_wait_never_reruns_a_check_whose_failure_is_final():
    """A statistical rejection stays a rejection: --wait must not re-draw until a pass comes up."""
    final = Catalogue((Category("first", "First"),), (
        CheckSpec("split", "first", "split holds", "probe it"),
        CheckSpec("sync", "first", "in sync", "wait", retry=True)))
    calls = {"split": 0, "sync": 0}

    def judge(check_id, status_for):
        def run(facts):
            calls[check_id] += 1
            return [Outcome(status_for(calls[check_id]), "-", "")]
        return run

    now = [0.0]
    run = run_until(final, list(final.checks), lambda: None,
                    {"split": judge("split", lambda n: "fail"), "sync": judge("sync", lambda n: "pass" if n > 1 else "fail")},
                    60, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert calls == {"split": 1, "sync": 2} and run.attempts == 2
    assert [(r.id, r.status) for r in run.results] == [("split", "fail"), ("sync", "pass")]
    only_final = run_until(final, [final.check("split")], lambda: None, {"split": judge("split", lambda n: "fail")},
                           60, clock=lambda: now[0], sleep=lambda s: pytest.fail("nothing to wait for"))
    assert only_final.attempts == 1 and calls["split"] == 2


def test_bonferroni_keeps_the_whole_runs_false_failure_rate_under_alpha():
    """Seeded runs of m healthy 80/20 routes, each judged by the probe's exact split test at its allotted alpha:
    at most alpha of the runs report any false failure; judged at alpha each, far more would."""
    rng = random.Random(20261127)
    alpha, routes, requests, runs = 0.1, 5, 200, 2000
    shares = {"v1": 0.8, "v2": 0.2}
    allotted = family_alpha(alpha, routes)
    assert allotted == pytest.approx(alpha / routes)
    corrected = uncorrected = 0
    for _ in range(runs):
        p_values = []
        for _ in range(routes):
            v1 = sum(rng.random() < shares["v1"] for _ in range(requests))
            p_values.append(split_p_value({"v1": v1, "v2": requests - v1}, shares))
        corrected += any(p <= allotted for p in p_values)
        uncorrected += any(p <= alpha for p in p_values)
    margin = 3 * math.sqrt(alpha * (1 - alpha) / runs)  # three standard errors of a rate of alpha
    assert corrected / runs <= alpha + margin
    assert uncorrected / runs > alpha + margin  # the correction is what keeps the run honest


def test_the_catalogue_says_which_failures_can_heal():
    retry = {spec.id: spec.retry for spec in load_catalogue().checks}
    assert not any(retry[c] for c in ("route-split", "authz-allowed", "authz-denied-principal", "authz-denied-method"))
    assert all(retry[c] for c in ("waypoint-pods-ready", "waypoint-sync", "waypoint-proxy-version", "ztunnel-skew"))
    assert not retry["waypoint-restarts"]  # a restart count never goes down


def test_result_ranks_fail_over_inconclusive_over_warn():
    independent = Catalogue(TWO.categories, (TWO.checks[0], CheckSpec("beta", "second", "beta works", "fix beta")))

    def run(*statuses):
        return VerifyRun(run_checks(independent, list(independent.checks), None,
                                    judges([Outcome(statuses[0], "-", "")], [Outcome(statuses[1], "-", "")])))
    assert run("pass", "warn").result == "warn"
    assert run("warn", "inconclusive").result == "inconclusive"
    assert run("inconclusive", "fail").result == "fail"
    assert run("skip", "pass").result == "pass"


def sample_run() -> VerifyRun:
    return VerifyRun(run_checks(TWO, list(TWO.checks), None, judges(
        [Outcome("pass", "-", "alpha is fine")],
        [Outcome("warn", "ns/a", "a is behind", ("version: 1.27",)),
         Outcome("fail", "ns/b", "b is broken", ("STALE: CDS", "istiod: istiod-1"))])))


@pytest.mark.parametrize("name, render", [
    ("verify_table.txt", lambda run: render_verify(run, TWO, "ns", Style(False), stream=UTF8)),
    ("verify_short.txt", lambda run: render_verify(run, TWO, "ns", Style(False), short=True, stream=UTF8)),
    ("verify_report.json", lambda run: __import__("json").dumps(verify_report(run, "ns", ORIGIN), indent=2) + "\n"),
])
def test_golden_output(name, render):
    """WAYPOINT_REFRESH_GOLDEN=1 rewrites the files; review the diff."""
    text = render(sample_run())
    path = GOLDEN / name
    if os.environ.get("WAYPOINT_REFRESH_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_ascii_glyphs_where_the_terminal_cannot_show_unicode():
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    assert glyphs_for(stream) == ASCII_GLYPHS
    text = render_verify(sample_run(), TWO, "ns", Style(False), stream=stream)
    text.encode("ascii")
    assert "[FAIL] beta works [ns/b]" in text


def test_probe_config_entry_for_one_rule_beats_the_routes_entry():
    config = parse_probe_config({"routes": [{"route": "r", "count": 100}, {"route": "r", "rule": 1, "count": 200},
                                            {"route": "r", "rule": "testers", "count": 300}]})
    assert [config.route("r", i, name).count for i, name in [(0, None), (1, None), (2, "testers")]] == [100, 200, 300]
    assert config.route("other", 0) is None


def test_probe_config_parses_and_rejects_with_a_sentence():
    config = parse_probe_config({
        "routes": [{"route": "reviews", "url": "http://reviews:9080/reviews/0", "match": "reviews-v[0-9]",
                    "count": 300}],
        "authorization": [{"policy": "pp", "allowedClient": "curl/deploy/curl", "deniedMethod": "DELETE"}],
    })
    assert config.route("reviews", 0).count == 300 and config.policies["pp"].denied_method == "DELETE"
    for bad, words in [
        ([1, 2], "must be a mapping"),
        ({"routez": []}, "unknown key 'routez'"),
        ({"routes": {"route": "x"}}, "'routes' must be a list"),
        ({"routes": [{"url": "http://x"}]}, "'route' is required"),
        ({"routes": [{"route": "x", "count": 0}]}, "count must be at least 1"),
        ({"routes": [{"route": "x", "count": "many"}]}, "count must be a number"),
        ({"routes": [{"route": "x", "rule": [1]}]}, "rule must be a rule index or name"),
        ({"authorization": [{"policy": "p", "colour": "red"}]}, "unknown key 'colour'"),
    ]:
        with pytest.raises(BadInput, match=re.escape(words)):
            parse_probe_config(bad, "cfg.yaml")
