"""Rule -> request without a cluster: the requests verify sends hit the rule under test, on Istio's own routes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, strategies as st

from kubectl_waypoint.checks.regex_examples import NoExample, examples
from kubectl_waypoint.checks.requests import RuleRequest, matches, requests_for, rule_targets

FIXTURES = Path(__file__).parent / "fixtures" / "istio"


def istio_routes(name: str) -> dict[str, dict]:
    """The HTTPRoutes of a copied Istio file, by namespace (the file's routes are all called "http")."""
    docs = [d for d in yaml.safe_load_all((FIXTURES / name).read_text()) if d]
    return {(d["metadata"].get("namespace") or "default"): d for d in docs if d["kind"] == "HTTPRoute"}


def route(name: str, *rules: dict, created: str = "2026-01-01T00:00:00Z") -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
            "spec": {"rules": list(rules)}}


def rule(*matches: dict, name: str | None = None) -> dict:
    found = {"matches": list(matches), "backendRefs": [{"name": "a"}, {"name": "b"}]}
    return {**found, "name": name} if name else found


def prefix(value: str, **more) -> dict:
    return {"path": {"type": "PathPrefix", "value": value}, **more}


def exact(value: str, **more) -> dict:
    return {"path": {"type": "Exact", "value": value}, **more}


def regex(value: str, **more) -> dict:
    return {"path": {"type": "RegularExpression", "value": value}, **more}


# -- Istio's own routes ---------------------------------------------------------------------------


def test_every_rule_of_istios_match_kinds_route_gets_a_request_that_only_it_takes():
    routes = istio_routes("traffic-httproute-match-kinds.yaml")
    found = {ns: [(t.request, t.skip) for t in rule_targets([r])] for ns, r in routes.items()}
    assert found["allowed-2"] == [
        (RuleRequest("/foo/bar"), None),
        (RuleRequest("/baz?my-param=some-value", headers=("my-header: some-value",)), None),
        (RuleRequest("/"), None),
    ]
    assert found["allowed-1"] == [(RuleRequest("/foo", headers=("my-header: some-value",)), None),
                                  (RuleRequest("/foo"), None)]  # the regex rule, without the header of rule 0
    for ns, r in routes.items():
        for target in rule_targets([r]):
            own = target.rule["matches"]
            assert any(matches(m, target.request) for m in own), (ns, target.label)


def test_a_rule_without_matches_is_probed_at_the_root_as_the_crd_defaults_it():
    (target,) = rule_targets([yaml.safe_load((FIXTURES / "traffic-route-reviews-90-10.yaml").read_text())])
    assert (target.route, target.label, target.request) == ("reviews", "rule 0", RuleRequest("/"))


def test_the_catch_all_rule_is_probed_where_no_earlier_rule_matches():
    r = route("r", rule(prefix("/api")), rule(prefix("/")))
    assert [t.request.path for t in rule_targets([r])] == ["/api", "/"]
    r = route("r", rule(exact("/")), rule(prefix("/")))
    assert [t.request.path for t in rule_targets([r])] == ["/", "/waypoint-probe"]


# -- precedence and shadowing ---------------------------------------------------------------------


def test_an_exact_path_outranks_an_earlier_prefix_so_the_prefix_is_probed_below_it():
    targets = rule_targets([route("r", rule(prefix("/a")), rule(exact("/a")))])
    assert [t.request.path for t in targets] == ["/a/waypoint-probe", "/a"]


def test_a_rule_every_request_of_which_an_earlier_rule_takes_is_skipped_with_the_reason():
    first, second = rule_targets([route("r", rule(exact("/x")), rule(exact("/x"), name="again"))])
    assert first.request == RuleRequest("/x") and second.request is None
    assert second.label == "rule 1 (again)"
    assert "goes to HTTPRoute r rule 0 first" in second.skip


def test_a_regex_under_a_longer_prefix_is_shadowed_whatever_it_generates():
    _, shadowed = rule_targets([route("r", rule(prefix("/api")), rule(regex(r"/api/v[0-9]+")))])
    assert shadowed.request is None and "HTTPRoute r rule 0" in shadowed.skip


def test_a_catch_all_prefix_outranks_every_regex_however_long_as_in_istio():
    catch_all, pattern = rule_targets([route("r", rule(prefix("/")), rule(regex(r"/reviews/[0-9]+/details")))])
    assert catch_all.request == RuleRequest("/") and pattern.request is None
    assert "goes to HTTPRoute r rule 0 first" in pattern.skip


def test_a_method_match_outranks_a_plain_one_and_leaves_it_the_other_methods():
    plain, with_method = rule_targets([route("r", rule(prefix("/")), rule(prefix("/", method="GET")))])
    assert with_method.request == RuleRequest("/", "GET")
    assert plain.request is None and "rule 1 first" in plain.skip  # every request it could send is a GET


def test_a_match_with_more_headers_is_reached_with_them_and_the_other_without():
    both = prefix("/", headers=[{"name": "x", "value": "1"}, {"name": "y", "value": "2"}])
    one = prefix("/", headers=[{"name": "x", "value": "1"}])
    fewer, more = rule_targets([route("r", rule(one), rule(both))])
    assert more.request.headers == ("x: 1", "y: 2") and fewer.request.headers == ("x: 1",)


def test_across_routes_the_older_route_wins_a_tie():
    young = route("young", rule(exact("/same")), created="2026-02-01T00:00:00Z")
    old = route("old", rule(exact("/same")), created="2026-01-01T00:00:00Z")
    by_route = {t.route: t for t in rule_targets([young, old])}
    assert by_route["old"].request == RuleRequest("/same")
    assert by_route["young"].request is None and "HTTPRoute old rule 0" in by_route["young"].skip


def test_several_matches_of_one_rule_any_of_them_will_do():
    (target,) = rule_targets([route("r", rule(exact("/a", method="HEAD"), prefix("/b")))])
    assert target.request == RuleRequest("/b")


# -- what the probe cannot send --------------------------------------------------------------------


@pytest.mark.parametrize("match, words", [
    (exact("/a", method="HEAD"), "HEAD"),
    (prefix("/", headers=[{"name": "Host", "value": "other"}]), "'Host'"),
    (prefix("/", headers=[{"name": "x", "value": " padded "}]), "cannot send"),
    (prefix("/a b"), "percent-encoding"),
    (prefix("/", queryParams=[{"name": "a&b", "value": "1"}]), "percent-encoding"),
    (regex(r"/(?=a)a"), "look-around"),
    (regex(r"/[[:alpha:]]+"), "POSIX class"),
    (prefix("/", headers=[{"name": "x", "type": "Contains", "value": "1"}]), "'Contains'"),
])
def test_a_rule_no_request_can_reach_is_skipped_with_the_reason(match, words):
    (target,) = rule_targets([route("r", rule(match))])
    assert target.request is None and target.skip.startswith("no probe request can reach it: ")
    assert words in target.skip


def test_a_match_that_contradicts_itself_is_skipped_not_a_crash():
    both = prefix("/", queryParams=[{"name": "v", "value": "1"}, {"name": "v", "value": "2"}])
    (target,) = rule_targets([route("r", rule(both))])
    assert target.request is None and "contradict" in target.skip


def test_regex_headers_and_query_values_are_generated_and_matched():
    match = regex(r"/items/[0-9]{2}", headers=[{"name": "x-user", "type": "RegularExpression", "value": "tester-[a-z]+"}],
                  queryParams=[{"name": "v", "type": "RegularExpression", "value": "(blue|green)"}])
    (first, *rest) = requests_for(match)
    assert first == RuleRequest("/items/00?v=blue", headers=("x-user: tester-a",))
    assert all(matches(match, r) for r in [first, *rest])
    assert not matches(match, RuleRequest("/items/00?v=red", headers=("x-user: tester-a",)))
    assert not matches(match, RuleRequest("/items/00?v=blue"))


# -- regular expressions ---------------------------------------------------------------------------

PATTERNS = [r"/foo((\/).*)?", r"/api/v[0-9]+/users", r"(a|bc|def)+x", r"[^/]+", r"\d{3}-\w*", r"^/exact$",
            r"/a(?:b|c)*", r"[\s\S]", r"(?i)/Mixed", r"/x{2,4}", r"/[^\d\s]+?z", r"\bword\b", r"/\.well-known/.+"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_examples_match_in_full_and_are_plain_ascii_where_re2_and_python_agree(pattern):
    found = examples(pattern)
    assert found and len(set(found)) == len(found)
    for text in found:
        assert re.fullmatch(pattern, text) and re.fullmatch(pattern, text, re.ASCII)
        assert text.isascii() and "\n" not in text  # where \d, \w, $ and . mean the same in RE2


@pytest.mark.parametrize("pattern, words", [
    (r"(a)\1", "back-reference"), (r"(?!x)y", "look-around"), (r"(?>ab)", "atomic group"), (r"a++", "possessive"),
    (r"a{,3}", "{,n}"), (r"\pL", "does not read"), (r"\Qa.b\E", "does not read"), (r"x\Z", "\\Z"),
    (r"a{1001}", "above 1000"), (r"[[:digit:]]", "POSIX"),
])
def test_patterns_re2_and_python_read_differently_are_refused_with_the_reason(pattern, words):
    with pytest.raises(NoExample, match=re.escape(words)):
        examples(pattern)


def test_nested_repeats_give_a_reason_not_a_gigabyte_string():
    with pytest.raises(NoExample, match="no request value"):
        examples(r"((a{1000}){1000}){1000}")


def test_a_filter_that_nothing_passes_is_a_reason_not_an_empty_list():
    with pytest.raises(NoExample, match="no request value"):
        examples(r"[a-c]", allowed=lambda s: s.startswith("/"))


# A small grammar of RE2-compatible patterns: literals, classes, groups, alternation, repeats.
_atoms = st.one_of(
    st.sampled_from(list("abcXYZ019-_/")).map(re.escape),
    st.sampled_from([r"\d", r"\w", r"\s", r".", r"[a-f]", r"[^0-9]", r"[A-Z0-9_]", r"[\d.]"]),
)


def _regexes():
    return st.recursive(
        _atoms,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=4).map("".join),
            st.lists(inner, min_size=1, max_size=3).map(lambda alts: "(" + "|".join(alts) + ")"),
            st.tuples(inner, st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "*?"])).map(lambda t: f"(?:{t[0]}){t[1]}"),
        ),
        max_leaves=8,
    )


@given(_regexes())
def test_every_generated_pattern_yields_examples_that_match_it(pattern):
    for text in examples(pattern):
        assert re.fullmatch(pattern, text, re.ASCII) and re.fullmatch(pattern, text), (pattern, text)
