"""Which request probes an HTTPRoute rule: one it matches and no rule ranked above it takes first.

Pure: HTTPRoutes in, a request per rule (or the reason there is none) out. A probe that ignores
a rule's matches tests some other rule. Each match is ranked on its own, as Istio turns every
match into its own route and sorts them (pilot/pkg/config/kube/gateway/conversion.go,
sortHTTPRoutes): an Exact path over a PathPrefix over a RegularExpression, then the longer path
value, then a method match, then more header matches, then more query parameter matches; ties
keep the order of the routes (oldest first, then by name) and of their rules.
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .regex_examples import NoExample, examples

# The CRD's default for a rule without matches and for a match without a path.
DEFAULT_PATH = {"type": "PathPrefix", "value": "/"}
PREFIX_PROBE_SEGMENT = "waypoint-probe"  # appended below a prefix when the prefix itself is taken
MAX_REQUESTS_PER_MATCH = 16
PATH_RANK = {"Exact": 3, "PathPrefix": 2, "RegularExpression": 1}
# Characters sent as they are: no percent-encoding for Envoy to decode, no dot segments to normalize.
_PATH_CHARS = frozenset(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/")
_QUERY_CHARS = frozenset(string.ascii_letters + string.digits + "-._~!$'()*,;:@/")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Host picks the Service and Connection: close gives each request its own connection.
_HEADERS_THE_PROBE_SETS = frozenset({"host", "connection"})


@dataclass(frozen=True)
class RuleRequest:
    """What to send: the path with its query string, the method, and `Name: value` headers."""

    path: str
    method: str = "GET"
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleTarget:
    """One rule of an HTTPRoute and the request that probes it, or why no request can."""

    route: str
    index: int
    name: str | None
    rule: dict
    request: RuleRequest | None
    skip: str | None = None

    @property
    def label(self) -> str:
        return f"rule {self.index}" + (f" ({self.name})" if self.name else "")


@dataclass(frozen=True)
class _Ranked:
    route: str
    rule: int
    rule_name: str | None
    match: dict

    @property
    def label(self) -> str:
        return f"HTTPRoute {self.route} rule {self.rule}" + (f" ({self.rule_name})" if self.rule_name else "")


def rule_targets(routes: Sequence[dict]) -> list[RuleTarget]:
    """For every rule of `routes` (the HTTPRoutes of one parent), in order, the request that probes it."""
    ranked = sorted(_ranked_matches(routes), key=_precedence)
    return [_target(route, index, rule, ranked)
            for route in routes for index, rule in enumerate(_rules(route))]


def _name(route: dict) -> str:
    return (route.get("metadata") or {}).get("name", "?")


def _rules(route: dict) -> list[dict]:
    return [rule for rule in (route.get("spec") or {}).get("rules") or [] if isinstance(rule, dict)]


def _matches_of(rule: dict) -> list[dict]:
    found = [m for m in rule.get("matches") or [] if isinstance(m, dict)]
    return [{**m, "path": m.get("path") or DEFAULT_PATH} for m in found] or [{"path": DEFAULT_PATH}]


def _ranked_matches(routes: Sequence[dict]) -> list[tuple[_Ranked, int]]:
    def age(route: dict):
        meta = route.get("metadata") or {}
        return (meta.get("creationTimestamp") or "", meta.get("namespace") or "", meta.get("name") or "")

    found = []
    for route in sorted(routes, key=age):
        for index, rule in enumerate(_rules(route)):
            for match in _matches_of(rule):
                found.append((_Ranked(_name(route), index, rule.get("name"), match), len(found)))
    return found


def _precedence(entry: tuple[_Ranked, int]):
    ranked, position = entry
    path = ranked.match["path"]
    kind, value = path.get("type", "PathPrefix"), path.get("value") or "/"
    length = len(value if kind != "PathPrefix" or value == "/" else value.rstrip("/") or "/")
    return (-PATH_RANK.get(kind, 0), -length, ranked.match.get("method") is None,
            -len(ranked.match.get("headers") or []), -len(ranked.match.get("queryParams") or []), position)


def _target(route: dict, index: int, rule: dict, ranked: list[tuple[_Ranked, int]]) -> RuleTarget:
    name = _name(route)
    reasons = []
    for match in _matches_of(rule):
        try:
            candidates = requests_for(match)
        except NoExample as exc:
            reasons.append(exc.reason)
            continue
        winner = None
        for request in candidates:
            winner = next((r for r, _ in ranked if matches(r.match, request)), None)
            if winner is not None and (winner.route, winner.rule) == (name, index):
                return RuleTarget(name, index, rule.get("name"), rule, request)
        if winner is not None:
            reasons.append(f"every request it matches goes to {winner.label} first, which Istio ranks higher "
                           "(exact over prefix over regular expression paths, then longer paths, a method, "
                           "more headers, more query parameters, then the older route and earlier rule)")
    reason = reasons[0] if reasons else "its conditions contradict each other (such as one query parameter with two values)"
    return RuleTarget(name, index, rule.get("name"), rule, None, "no probe request can reach it: " + reason)


# ------------------------------------------------------------------------------------ generating

def requests_for(match: dict) -> list[RuleRequest]:
    """Requests one HTTPRouteMatch matches, plainest first; NoExample with the reason when none."""
    method = match.get("method") or "GET"
    if method == "HEAD":
        raise NoExample("it matches only HEAD requests, which the probe cannot send (curl would wait for a body)")
    paths = _paths(match.get("path") or DEFAULT_PATH)
    for h in match.get("headers") or []:
        if not _TOKEN.fullmatch(str(h.get("name", ""))) or str(h.get("name")).lower() in _HEADERS_THE_PROBE_SETS:
            raise NoExample(f"it matches the header {h.get('name')!r}, which the probe cannot set")
    for q in match.get("queryParams") or []:
        if not q.get("name") or not set(str(q["name"])) <= _QUERY_CHARS:
            raise NoExample(f"its query parameter name {q.get('name')!r} would need percent-encoding")
    headers = [[f"{h.get('name')}: {value}" for value in _values(h, "header", _header_ok)]
               for h in match.get("headers") or []]
    queries = [[f"{q.get('name')}={value}" for value in _values(q, "query parameter", _query_ok)]
               for q in match.get("queryParams") or []]
    combos = itertools.islice(itertools.product(paths, *headers, *queries), MAX_REQUESTS_PER_MATCH)
    found = []
    for combo in combos:
        path, chosen = combo[0], combo[1:]
        query = "&".join(chosen[len(headers):])
        found.append(RuleRequest(path + (f"?{query}" if query else ""), method, tuple(chosen[:len(headers)])))
    return found


def _paths(path: dict) -> list[str]:
    kind, value = path.get("type", "PathPrefix"), path.get("value") or "/"
    if kind == "RegularExpression":
        return examples(value, _path_ok)
    if kind not in PATH_RANK:
        raise NoExample(f"its path match type {kind!r} is not one the Gateway API defines")
    if not _path_ok(value):
        raise NoExample(f"its path {value!r} would need percent-encoding or normalizing")
    if kind == "Exact":
        return [value]
    return [value, value.rstrip("/") + "/" + PREFIX_PROBE_SEGMENT]


def _values(spec: dict, what: str, allowed) -> list[str]:
    kind, value = spec.get("type", "Exact"), spec.get("value", "")
    if kind == "RegularExpression":
        return examples(value, allowed, limit=2)
    if kind != "Exact":
        raise NoExample(f"its {what} match type {kind!r} is not one the Gateway API defines")
    if not allowed(value):
        raise NoExample(f"its {what} {spec.get('name')!r} must be {value!r}, which curl cannot send as it is")
    return [value]


def _path_ok(path: str) -> bool:
    segments = path.split("?", 1)[0].split("/")
    return (path.startswith("/") and set(path) <= _PATH_CHARS and "//" not in path
            and not any(s in (".", "..") for s in segments))


def _header_ok(value: str) -> bool:
    return bool(value) and value == value.strip() and all(" " <= c <= "~" for c in value)


def _query_ok(value: str) -> bool:
    return set(value) <= _QUERY_CHARS


# ------------------------------------------------------------------------------------ matching

def matches(match: dict, request: RuleRequest) -> bool:
    """Whether an HTTPRouteMatch takes `request`, as the waypoint decides (regexes: RE2 semantics
    as far as Python's re shares them; a regex Python cannot read matches nothing here)."""
    path, _, query = request.path.partition("?")
    spec = match.get("path") or DEFAULT_PATH
    kind, value = spec.get("type", "PathPrefix"), spec.get("value") or "/"
    if kind == "Exact" and path != value:
        return False
    if kind == "PathPrefix":
        prefix = value.rstrip("/")
        if prefix and path != prefix and not path.startswith(prefix + "/"):
            return False
    if kind == "RegularExpression" and not _full(value, path):
        return False
    if match.get("method") and match["method"] != request.method:
        return False
    sent = {}
    for header in request.headers:
        name, _, value = header.partition(":")
        sent.setdefault(name.strip().lower(), value.strip())
    if not all(_value_matches(h, sent.get(str(h.get("name", "")).lower())) for h in match.get("headers") or []):
        return False
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, value)
    return all(_value_matches(q, params.get(q.get("name"))) for q in match.get("queryParams") or [])


def _value_matches(spec: dict, value: str | None) -> bool:
    if value is None:
        return False
    if spec.get("type", "Exact") == "RegularExpression":
        return _full(spec.get("value", ""), value)
    return value == spec.get("value")


def _full(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value, re.ASCII) is not None
    except re.error:
        return False
