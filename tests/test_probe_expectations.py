"""Classification of responses and the verdict of a probe against its expectation."""

from __future__ import annotations

import re

import pytest

from kubectl_waypoint.errors import BadInput
from kubectl_waypoint.probe.curl import Response
from kubectl_waypoint.probe.expectations import (
    DEFAULT_CHECK_COUNT,
    Expectation,
    Served,
    SplitDesign,
    classify,
    compile_match,
    default_count,
    judge,
    parse_status,
)

SPLIT_80_20 = {"reviews-v1": 80, "reviews-v2": 20}


def ok(body: bytes = b"hello", status: str = "200", time_s: float = 0.01, new: bool = True) -> Response:
    return Response(status, 0, body, time_s, new)


def page(name: str, time_s: float = 0.01) -> Response:
    return ok(f"<html>{name}</html>".encode(), time_s=time_s)


L7_DENIED = Response("403", 0, b"RBAC: access denied", 0.003, True)
L4_RESET = Response("000", 56, b"", 0.002, True)
TIMEOUT = Response("000", 28, b"", 5.0, True)
APP_403 = Response("403", 0, b"Forbidden by the application", 0.01, True)
UNAVAILABLE = Response("503", 0, b"no healthy upstream", 0.01, True)


# --- classification -----------------------------------------------------------------------------


def test_the_backend_named_first_in_the_body_wins():
    body = b"<p>reviews-v2</p> ... <p>reviews-v1</p>"
    assert classify(body, ["reviews-v1", "reviews-v2"], None) == "reviews-v2"


def test_the_longest_name_wins_at_the_same_position():
    assert classify(b"served by reviews-v10", ["reviews-v1", "reviews-v10"], None) == "reviews-v10"
    assert classify(b"served by reviews-v1.", ["reviews-v10", "reviews-v1"], None) == "reviews-v1"


def test_a_body_naming_no_backend_is_unmatched():
    assert classify(b"Sorry, product reviews are currently unavailable", ["reviews-v1"], None) is None
    assert classify(b"", ["reviews-v1"], None) is None


def test_match_uses_the_first_capture_group_or_the_whole_match():
    assert classify(b'{"pod": "reviews-v2-7d9f"}', None, re.compile(r'"pod": "(reviews-v\d)')) == "reviews-v2"
    assert classify(b"color: red", None, re.compile(r"red|blue")) == "red"
    assert classify(b"\xff\xfe binary reviews-v3", None, re.compile(r"reviews-v\d")) == "reviews-v3"
    assert classify(b"nothing", None, re.compile(r"(reviews-v\d)")) is None


# --- inputs -------------------------------------------------------------------------------------


def test_parse_status_and_compile_match_reject_bad_input():
    assert parse_status("403") == "403"
    for text in ("2xx", "99", "600", "20", "abc", ""):
        with pytest.raises(BadInput, match="--expect-status"):
            parse_status(text)
    with pytest.raises(BadInput, match="--match"):
        compile_match("reviews-v(")
    with pytest.raises(BadInput, match="l7, l4 or any"):
        Expectation.denial("l3")


def test_default_counts():
    assert default_count(Expectation.split(SPLIT_80_20)) == 450  # needs 384, plus 15% spare
    assert default_count(Expectation.split({"a": 50, "b": 50})) == 650
    assert default_count(Expectation.answered("200")) == DEFAULT_CHECK_COUNT == 50
    assert default_count(Expectation.denial("l7")) == 50


def test_judge_rejects_impossible_parameters():
    with pytest.raises(BadInput, match="--alpha"):
        judge(Expectation.answered(), [ok()], sent=1, alpha=0)
    with pytest.raises(BadInput, match="--min-availability"):
        judge(Expectation.answered(), [ok()], sent=1, min_availability=1.5)
    with pytest.raises(ValueError):
        judge(Expectation.answered(), [ok(), ok()], sent=1)


# --- authorization ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "responses"),
    [("l7", [L7_DENIED] * 5), ("l4", [L4_RESET] * 5), ("any", [L7_DENIED, L4_RESET, L7_DENIED])],
)
def test_denials_as_expected_pass(layer, responses):
    verdict = judge(Expectation.denial(layer), responses, sent=len(responses))
    assert verdict.result == "pass"
    assert verdict.reasons[0].startswith(f"All {len(responses)} requests were ")


def test_an_unexpected_success_fails_loudly_even_when_failures_are_tolerated():
    responses = [L7_DENIED] * 47 + [ok()] * 3
    verdict = judge(Expectation.denial("l7"), responses, sent=50, min_availability=0.0)
    assert verdict.result == "fail"
    assert verdict.reasons == [
        "UNEXPECTED SUCCESS: 3 of 50 requests were allowed (HTTP 200 x3) although they should be denied by "
        "the waypoint (403 RBAC: access denied): the authorization policy is not enforced."
    ]


def test_an_unexpected_denial_fails_as_loudly():
    responses = [ok()] * 49 + [L7_DENIED]
    verdict = judge(Expectation.answered("200"), responses, sent=50, min_availability=0.0)
    assert verdict.result == "fail"
    assert verdict.reasons == [
        "UNEXPECTED DENIAL: 1 of 50 requests were denied by the waypoint (403 RBAC: access denied) although "
        "they should be answered HTTP 200: the authorization policy rejects this client."
    ]


def test_a_denial_at_the_wrong_layer_fails_and_says_what_happened():
    verdict = judge(Expectation.denial("l7"), [L7_DENIED] * 8 + [L4_RESET] * 2, sent=10)
    assert verdict.result == "fail"
    assert "2 of 10 requests were not denied by the waypoint" in verdict.reasons[0]
    assert "connection reset (curl exit 56" in verdict.reasons[0]
    assert judge(Expectation.denial("l4"), [L7_DENIED], sent=1).result == "fail"


def test_a_403_without_the_rbac_body_is_not_a_waypoint_denial():
    assert judge(Expectation.denial("l7"), [APP_403], sent=1).result == "fail"
    assert judge(Expectation.answered("403"), [APP_403, L7_DENIED], sent=2).result == "pass"


# --- statuses and availability ------------------------------------------------------------------


def test_any_unexpected_status_fails_a_one_shot_probe_with_a_tally():
    responses = [ok()] * 17 + [UNAVAILABLE, TIMEOUT, TIMEOUT]
    verdict = judge(Expectation.answered(), responses, sent=20)
    assert verdict.result == "fail"
    assert verdict.reasons == [
        "3 of 20 requests were not answered HTTP 2xx (timeout (curl exit 28) x2, HTTP 503 x1); "
        "85.0% were, at least 100.0% required."
    ]
    assert verdict.statuses == {"000": 2, "200": 17, "503": 1}
    assert verdict.availability is None and verdict.longest_outage_s is None  # one-shot


def test_min_availability_tolerates_transient_failures():
    responses = [ok()] * 19 + [L4_RESET]
    verdict = judge(Expectation.answered("200"), responses, sent=20, min_availability=0.95)
    assert verdict.result == "pass"
    assert verdict.reasons == ["19 of 20 requests were answered HTTP 200."]


def test_continuous_mode_reports_availability_and_the_longest_outage():
    # interval 1s: requests start at 0, 1, 2, ...; requests 3..5 fail, request 6 succeeds again
    responses = [ok()] * 3 + [UNAVAILABLE, L4_RESET, UNAVAILABLE] + [ok()] * 4
    verdict = judge(Expectation.answered(), responses, sent=10, interval_s=1.0, min_availability=0.5)
    assert verdict.result == "pass"
    assert verdict.availability == pytest.approx(0.7)
    assert verdict.longest_outage_s == pytest.approx(3.0)
    assert judge(Expectation.answered(), responses, sent=10, interval_s=1.0, min_availability=0.9).result == "fail"


def test_a_timeout_stretches_the_outage_by_its_duration():
    responses = [ok(), TIMEOUT, ok()]
    verdict = judge(Expectation.answered(), responses, sent=3, interval_s=1.0, min_availability=0.0)
    assert verdict.longest_outage_s == pytest.approx(5.0)  # next request started when the timeout ended


def test_requests_lost_from_the_stream():
    continuous = judge(Expectation.answered(), [ok()] * 8, sent=10, interval_s=1.0)
    assert continuous.result == "inconclusive" and continuous.lost == 2
    assert "2 of 10 requests were lost" in continuous.reasons[0]
    one_shot = judge(Expectation.answered(), [ok()] * 8, sent=10)
    assert one_shot.result == "pass"
    assert one_shot.reasons == [
        "All 8 requests were answered HTTP 2xx; 2 of 10 requests were lost when the exec stream ended early."
    ]
    nothing = judge(Expectation.denial(), [], sent=10)
    assert nothing.result == "inconclusive"  # never "denied" from missing samples


def test_latency_counts_only_requests_that_got_an_http_answer():
    responses = [ok(time_s=t / 1000) for t in range(1, 101)] + [TIMEOUT]
    verdict = judge(Expectation.answered(), responses, sent=101, min_availability=0.0)
    latency = verdict.latency
    assert (latency.p50_ms, latency.p90_ms, latency.p99_ms, latency.max_ms) == pytest.approx((50, 90, 99, 100))


def test_reused_connections_are_counted_and_mentioned():
    verdict = judge(Expectation.answered(), [ok(), ok(new=False)], sent=2)
    assert verdict.reused_connections == 1
    assert "1 reused a connection" in verdict.reasons[0]


# --- splits -------------------------------------------------------------------------------------


def test_a_passing_split_carries_the_report_evidence():
    responses = [page("reviews-v1")] * 360 + [page("reviews-v2")] * 90
    verdict = judge(Expectation.split(SPLIT_80_20), responses, sent=450)
    assert verdict.result == "pass"
    assert (verdict.requests, verdict.test, verdict.tolerance, verdict.measured_by) == (450, "equivalence", 0.1, "body")
    assert verdict.backends == {"reviews-v1": 360, "reviews-v2": 90, "unmatched": 0}
    assert verdict.expected == {"reviews-v1": 0.8, "reviews-v2": 0.2}
    share = verdict.shares["reviews-v1"]
    decided = verdict.decision.backends[0]
    assert (share.low, share.high) == (decided.low, decided.high)  # the shown interval is the decision's
    assert 0.7 <= share.low < 0.8 < share.high <= 0.9 and decided.confidence == pytest.approx(0.9)
    assert verdict.reasons[0].startswith(
        "All 450 requests were answered HTTP 2xx; the split is within 10% of the weights (equivalence test, "
        "measured by body): reviews-v1 80.0% [")


def test_a_wrong_split_fails_and_names_the_shares_with_the_interval_that_decided():
    responses = [page("reviews-v1")] * 50 + [page("reviews-v2")] * 50
    verdict = judge(Expectation.split(SPLIT_80_20), responses, sent=100)
    assert verdict.result == "fail"
    assert verdict.reasons[0].startswith(
        "The traffic split differs from the expected one by more than 10%: reviews-v1 50.0% [")
    assert "99.9% interval] expected 80.0%" in verdict.reasons[0]


def test_a_split_within_the_tolerance_but_not_yet_shown_is_inconclusive_and_says_how_many_to_send():
    responses = [page("reviews-v1")] * 40 + [page("reviews-v2")] * 10
    verdict = judge(Expectation.split(SPLIT_80_20), responses, sent=50)
    assert verdict.result == "inconclusive" and verdict.required_requests == 114
    assert "50 requests cannot decide the split" in verdict.reasons[0]
    assert "send more (--count 114), or drop --count for the sequential test." in verdict.reasons[0]


def test_unmatched_responses_are_judged_by_a_bound():
    matched = [page("reviews-v1")] * 342 + [page("reviews-v2")] * 86
    tolerated = judge(Expectation.split(SPLIT_80_20), matched + [ok(b"no reviews")] * 30, sent=458)
    assert tolerated.result == "pass" and tolerated.backends["unmatched"] == 30  # 6.6%, not shown above 5%
    too_many = judge(Expectation.split(SPLIT_80_20), matched + [ok(b"no reviews")] * 60, sent=488)
    assert too_many.result == "fail"
    assert "60 of 488 answered requests (12.3%, at least " in too_many.reasons[0]
    assert "named no backend, more than 5% (--max-unmatched)" in too_many.reasons[0]


def test_a_backend_outside_the_split_found_by_match_fails():
    expectation = Expectation.split(SPLIT_80_20, match=re.compile(r"(reviews-v\d)"))
    responses = [page("reviews-v1")] * 360 + [page("reviews-v2")] * 89 + [page("reviews-v3")]
    verdict = judge(expectation, responses, sent=450)
    assert verdict.result == "fail"
    assert verdict.backends["reviews-v3"] == 1
    assert "1 response came from reviews-v3 (by their bodies), which is not a backend of the expected split." \
        in verdict.reasons


def test_failed_requests_do_not_count_in_the_split_and_fail_only_when_availability_is_shown_low():
    split = [page("reviews-v1")] * 360 + [page("reviews-v2")] * 90
    tolerated = judge(Expectation.split(SPLIT_80_20), split + [UNAVAILABLE] * 5, sent=455, min_availability=0.99)
    assert tolerated.result == "pass"
    assert tolerated.backends == {"reviews-v1": 360, "reviews-v2": 90, "unmatched": 0}
    failing = judge(Expectation.split(SPLIT_80_20), split + [UNAVAILABLE] * 25, sent=475, min_availability=0.99)
    assert failing.result == "fail"
    assert failing.reasons[0].startswith("25 of 475 requests were not answered HTTP 2xx (HTTP 503 x25): availability "
                                         "94.7%, at most ")
    assert failing.reasons[0].endswith("below the 99.0% required (--min-availability).")
    strict = judge(Expectation.split(SPLIT_80_20), split + [UNAVAILABLE], sent=451)  # the default: every request
    assert strict.result == "fail"


def test_a_reused_connection_makes_a_split_inconclusive():
    responses = [page("reviews-v1")] * 359 + [page("reviews-v1", time_s=0.01)] + [page("reviews-v2")] * 90
    responses[3] = Response("200", 0, b"<html>reviews-v1</html>", 0.01, False)
    verdict = judge(Expectation.split(SPLIT_80_20), responses, sent=450)
    assert verdict.result == "inconclusive" and not verdict.undecided
    assert verdict.reasons == ["1 of 450 requests came on a reused connection: those did not choose a "
                               "waypoint anew and are not independent samples, so the split cannot be judged (check "
                               "that nothing in the client pod keeps connections alive)."]


def test_telemetry_counts_decide_who_served_and_an_application_404_still_counts():
    responses = [ok(b"not found", status="404")] * 450
    served = Served({"reviews-v1": 362, "reviews-v2": 88})
    verdict = judge(Expectation.split(SPLIT_80_20), responses, sent=450, served=served, min_availability=0.99)
    assert verdict.result == "pass" and verdict.measured_by == "telemetry"
    assert verdict.backends == {"reviews-v1": 362, "reviews-v2": 88, "unmatched": 0}
    failed = judge(Expectation.split(SPLIT_80_20), responses, sent=450, min_availability=0.99,
                   served=Served({"reviews-v1": 340, "reviews-v2": 80}, waypoint_failures=30))
    assert failed.result == "fail" and "30 of 450 requests were failed by the mesh" in failed.reasons[0]
    uncounted = judge(Expectation.split(SPLIT_80_20), responses, sent=450,
                      served=Served({"reviews-v1": 240, "reviews-v2": 60}))
    assert uncounted.result == "fail" and uncounted.backends["unmatched"] == 150
    assert uncounted.reasons[0].startswith("150 of 450 answered requests (33.3%, at least ")
    assert uncounted.reasons[0].endswith("were not counted by the waypoint, more than 5% (--max-unmatched); another "
                                          "proxy may have served them.")


def test_match_without_a_split_still_counts_backends():
    verdict = judge(Expectation.answered(match=re.compile(r"reviews-v\d")), [page("reviews-v1"), ok(b"-")], sent=2)
    assert verdict.backends == {"reviews-v1": 1, "unmatched": 1}
    assert verdict.p_value is None and verdict.expected is None


def test_a_sequential_look_without_a_decision_asks_for_more_and_says_so_at_the_cap():
    responses = [page("reviews-v1")] * 16 + [page("reviews-v2")] * 4
    design = SplitDesign(test="sequential", max_requests=20)
    verdict = judge(Expectation.split(SPLIT_80_20), responses, sent=20, design=design, min_availability=0.99)
    assert verdict.result == "inconclusive" and verdict.undecided and verdict.test == "sequential"
    assert verdict.reasons[0].startswith("After 20 requests the split, availability and unmatched share are not "
                                         "decided yet (reviews-v1 80.0% [")
    assert verdict.reasons[0].endswith("the cap is --max-requests 20: raise it, or check what makes the shares waver.")
