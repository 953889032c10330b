"""Classification of responses and the verdict of a probe against its expectation."""

from __future__ import annotations

import re

import pytest

from kubectl_waypoint.errors import BadInput
from kubectl_waypoint.probe.curl import Response
from kubectl_waypoint.probe.expectations import (
    DEFAULT_CHECK_COUNT,
    Expectation,
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
    assert verdict.requests == 450
    assert verdict.backends == {"reviews-v1": 360, "reviews-v2": 90, "unmatched": 0}
    assert verdict.expected == {"reviews-v1": 0.8, "reviews-v2": 0.2}
    assert verdict.p_value == pytest.approx(1.0)
    share = verdict.shares["reviews-v1"]
    assert share.observed == 0.8 and share.low < 0.8 < share.high and share.expected == 0.8
    assert verdict.reasons == [
        "All 450 requests were answered HTTP 2xx; the split matches the expected one (p = 1): "
        "reviews-v1 80.0%, reviews-v2 20.0%."
    ]


def test_a_wrong_split_fails_whatever_the_sample_size_and_names_the_shares():
    responses = [page("reviews-v1")] * 50 + [page("reviews-v2")] * 50
    verdict = judge(Expectation.split(SPLIT_80_20), responses, sent=100)
    assert verdict.result == "fail"
    assert verdict.p_value < 1e-9
    assert verdict.reasons[0].startswith("The traffic split differs from the expected one (p = ")
    assert "reviews-v1 50.0% [" in verdict.reasons[0] and "(expected 80.0%)" in verdict.reasons[0]


def test_unmatched_responses_up_to_five_percent_are_tolerated():
    matched = [page("reviews-v1")] * 342 + [page("reviews-v2")] * 86
    tolerated = judge(Expectation.split(SPLIT_80_20), matched + [ok(b"no reviews")] * 22, sent=450)
    assert tolerated.result == "pass" and tolerated.backends["unmatched"] == 22
    too_many = judge(Expectation.split(SPLIT_80_20), matched + [ok(b"no reviews")] * 30, sent=458)
    assert too_many.result == "fail"
    assert "30 of 458 successful responses (6.6%) named no backend" in too_many.reasons[0]


def test_a_backend_outside_the_split_found_by_match_fails():
    expectation = Expectation.split(SPLIT_80_20, match=re.compile(r"(reviews-v\d)"))
    responses = [page("reviews-v1")] * 360 + [page("reviews-v2")] * 89 + [page("reviews-v3")]
    verdict = judge(expectation, responses, sent=450)
    assert verdict.result == "fail"
    assert verdict.backends["reviews-v3"] == 1
    assert "1 response came from reviews-v3, which is not a backend of the expected split." in verdict.reasons


def test_failed_requests_do_not_count_in_the_split_but_fail_the_probe():
    responses = [page("reviews-v1")] * 360 + [page("reviews-v2")] * 90 + [UNAVAILABLE] * 5
    verdict = judge(Expectation.split(SPLIT_80_20), responses, sent=455)
    assert verdict.result == "fail"
    assert verdict.backends == {"reviews-v1": 360, "reviews-v2": 90, "unmatched": 0}
    assert verdict.reasons == [
        "5 of 455 requests were not answered HTTP 2xx (HTTP 503 x5); 98.9% were, at least 100.0% required."
    ]


def test_match_without_a_split_still_counts_backends():
    verdict = judge(Expectation.answered(match=re.compile(r"reviews-v\d")), [page("reviews-v1"), ok(b"-")], sent=2)
    assert verdict.backends == {"reviews-v1": 1, "unmatched": 1}
    assert verdict.p_value is None and verdict.expected is None
