"""Routing and authorization checks: derive probes from HTTPRoutes and AuthorizationPolicies, run them.

Derivation is plain data (RoutePlan, PolicyPlan) so it can be tested without a cluster; the
probes themselves reuse `kubectl waypoint probe`'s engine and statistics. A route is probed per
rule, with a request that rule matches (requests.py); every probe starts from a pod that has
curl (clients.py). The route probes of a run share one family-wise --alpha (Bonferroni).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace

from ..probe.expectations import DEFAULT_CHECK_COUNT, Expectation, compile_match
from ..probe.sequential import DEFAULT_SPLIT_MIN_AVAILABILITY
from .clients import deploy_curl_command, first_with_curl, no_client_message
from .requests import rule_targets
from .runner import Outcome

CURL_SAMPLE_ACCOUNT = "curl"  # the service account of Istio's curl sample (samples/curl/curl.yaml)
FALLBACK_DENIED_METHODS = ("DELETE", "POST", "PUT", "PATCH", "GET")
UNSUPPORTED_RULE_FIELDS = ("notPrincipals", "notNamespaces", "notMethods", "notPaths", "when")


@dataclass
class RoutePlan:
    route: str
    subject: str
    url: str | None
    weights: dict[str, float | None]
    exclude_selectors: list[dict] = field(default_factory=list)
    skip: str | None = None
    method: str = "GET"
    headers: tuple[str, ...] = ()
    rule: int = 0
    rule_name: str | None = None


@dataclass
class PolicyPlan:
    policy: str
    service: str
    subject: str
    url: str | None
    allowed_principals: list[tuple[str | None, str | None]]  # (namespace, service account); None = any
    methods: list[str]
    target_selector: dict
    skip: str | None = None


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _service_url(facts, name: str, port: int | None, path: str) -> tuple[str | None, str | None]:
    service = facts.service(name)
    if service is None:
        return None, f"Service {facts.namespace}/{name} does not exist"
    ports = [p.get("port") for p in (service.get("spec") or {}).get("ports") or [] if isinstance(p, dict)]
    port = port or (ports[0] if ports else 80)
    return f"http://{name}.{facts.namespace}.svc.cluster.local:{port}{path}", None


def _service_parents(route: dict) -> list[dict]:
    return [p for p in (route.get("spec") or {}).get("parentRefs") or []
            if p.get("kind") == "Service" and p.get("group") in ("", None)]


def route_plans(facts) -> list[RoutePlan]:
    """One plan per weighted HTTPRoute rule (two or more backends) of a route attached to a Service.

    The rule's request is chosen among all the rules of the routes attached to the same Service,
    so that no rule Istio ranks higher takes it (requests.py).
    """
    def parent_key(parent: dict) -> tuple[str, str]:
        return (parent.get("namespace") or facts.namespace, parent.get("name"))

    by_parent: dict[tuple[str, str], list[dict]] = {}
    for route in facts.httproutes:
        for parent in _service_parents(route):
            by_parent.setdefault(parent_key(parent), []).append(route)
    targets = {key: rule_targets(routes) for key, routes in by_parent.items()}
    plans = []
    for route in facts.httproutes:
        name = _meta(route).get("name", "?")
        rules = (route.get("spec") or {}).get("rules") or []
        for parent in _service_parents(route):
            for target in (t for t in targets[parent_key(parent)] if t.route == name):
                backends = [b for b in target.rule.get("backendRefs") or [] if b.get("kind", "Service") == "Service"]
                if len(backends) < 2:
                    continue
                rule = f" {target.label}" if len(rules) > 1 or target.name else ""
                subject = f"HTTPRoute {name}{rule} -> Service {parent.get('name')}"
                request = target.request
                url, problem = _service_url(facts, parent.get("name"), parent.get("port"),
                                            request.path if request else "/")
                service = facts.service(parent.get("name"))
                if parent_key(parent)[0] != facts.namespace:
                    problem = (f"its parent Service is in namespace {parent_key(parent)[0]} (a consumer route, "
                               "applied to this namespace's clients only), which automatic probes do not model; "
                               "describe the probe in --probe-config")
                elif problem is None and facts.service_waypoint(service) is None:
                    problem = (f"Service {parent.get('name')} is not served by a waypoint, so its HTTPRoute is not "
                               "applied in ambient mode")
                selectors = [((facts.service(b["name"]) or {}).get("spec") or {}).get("selector") or {}
                             for b in backends] + [((service or {}).get("spec") or {}).get("selector") or {}]
                plans.append(RoutePlan(name, subject, url, {b["name"]: b.get("weight") for b in backends},
                                       [s for s in selectors if s], problem or target.skip,
                                       request.method if request else "GET", request.headers if request else (),
                                       target.index, target.name))
    return plans


def _selected(labels: dict, selectors: list[dict]) -> bool:
    return any(all(labels.get(k) == v for k, v in s.items()) for s in selectors)


def route_split(facts) -> list[Outcome]:
    plans = route_plans(facts)
    family = sum(1 for p in plans if not p.skip)
    return run_bounded(facts, plans, lambda facts, plan: _route_outcome(facts, plan, family))


def _route_outcome(facts, plan: RoutePlan, family: int) -> Outcome:
    if plan.skip:
        return Outcome("skip", plan.subject, f"skipped: {plan.skip}")
    configured = facts.options.probe_config.route(plan.route, plan.rule, plan.rule_name)
    url = (configured and configured.url) or plan.url
    match = compile_match(configured.match) if configured and configured.match else None
    expectation = Expectation.split(plan.weights, match=match)
    clients, why = _clients(facts, (configured and configured.client) or facts.options.client,
                            configured and configured.container, exclude=plan.exclude_selectors,
                            hint_namespace=facts.namespace)
    if not clients:
        return replace(why, subject=plan.subject)
    alpha = family_alpha(facts.options.alpha, family)
    count = configured.count if configured and configured.count else None  # None: the sequential test
    headers = plan.headers + (configured.headers if configured else ())
    measurement: list[str] = []
    outcome = _probe(facts, clients, url, expectation, count, plan.method, headers, alpha=alpha,
                     telemetry_for=lambda client: _route_telemetry(facts, plan, client, measurement),
                     max_requests=facts.options.max_requests, min_availability=DEFAULT_SPLIT_MIN_AVAILABILITY)
    verdict = outcome.verdict
    evidence = _evidence(outcome.client, url, verdict, plan.method, headers) + (
        f"alpha: {alpha:.3g} (family-wise {facts.options.alpha * facts.options.fleet_size:.3g} over {family} route "
        f"{'probe' if family == 1 else 'probes'}"
        + (f" in each of {facts.options.fleet_size} namespaces" if facts.options.fleet_size > 1 else "")
        + ", Bonferroni)",
        f"measured by: {verdict.measured_by}" + (f" ({verdict.test} test)" if verdict.test else ""),
        *measurement, *outcome.notes)
    backends = verdict.backends or {}
    named = sum(n for b, n in backends.items() if b != "unmatched")
    if backends.get("unmatched") and not named:
        return Outcome("warn", plan.subject,
                       f"none of the responses named a backend ({', '.join(plan.weights)}), so the split could not "
                       "be measured; describe the probe (url, match) in --probe-config", evidence)
    again = reproduce_command(outcome.client, url, plan.weights, plan.method, headers,
                              configured and configured.match, alpha, count or facts.options.max_requests, count)
    return Outcome(verdict.result, plan.subject, " ".join(verdict.reasons), evidence,
                   hint=None if verdict.result == "pass" else f"reproduce it: {again}")


def reproduce_command(client, url: str, weights: dict[str, float | None], method: str, headers, match: str | None,
                      alpha: float, max_requests: int, count: int | None = None) -> str:
    """The `kubectl waypoint probe` command that sends this rule's requests and judges them the same way."""
    split = ",".join(f"{name}={1 if weight is None else weight:g}" for name, weight in weights.items())
    argv = ["kubectl", "waypoint", "probe", "-n", client.namespace, f"pod/{client.pod}", "-c", client.container,
            url, "--expect-split", split, "--alpha", f"{alpha:g}"]
    argv += ["--count", str(count)] if count else ["--max-requests", str(max_requests)]
    argv += ["--method", method] if method != "GET" else []
    argv += [arg for header in headers for arg in ("-H", header)]
    argv += ["--match", match] if match else []
    return shlex.join(argv)


def family_alpha(alpha: float, family: int) -> float:
    """Each of `family` probes' share of the run's false-failure rate (Bonferroni).

    A sequential test fixes its alpha before its first request, and the probes run concurrently,
    so Holm's step-down (which needs every p-value first) does not apply; alpha / m does.
    """
    return alpha / max(family, 1)


def run_bounded(facts, plans: list, judge) -> list[Outcome]:
    """Judge each plan, up to --parallel probes at a time, keeping the plans' order.

    Facts the probes share are read first, so that threads never race to fill the same cache.
    """
    plans = list(plans)
    runnable = [p for p in plans if not p.skip]
    if len(runnable) > 1 and facts.options.parallel > 1:
        facts.client_candidates, facts.curl  # noqa: B018  (fill the caches before the threads start)
        from concurrent.futures import ThreadPoolExecutor

        from ..errors import WaypointError

        def guarded(plan):
            try:
                return judge(facts, plan)
            except WaypointError as exc:  # as the runner does for a whole check, here per plan
                return Outcome("inconclusive", plan.subject, exc.message)

        with ThreadPoolExecutor(max_workers=facts.options.parallel) as pool:
            return list(pool.map(guarded, plans))
    return [judge(facts, plan) for plan in plans]


def principal_namespaces(policies: list[dict]) -> set[str]:
    """Namespaces named by policies' principals and namespaces: where allowed clients may run."""
    found = set()
    for policy in policies:
        for rule in (policy.get("spec") or {}).get("rules") or []:
            for item in rule.get("from") or []:
                source = item.get("source") or {}
                found.update(ns for ns, _ in filter(None, map(_principal, source.get("principals") or [])) if ns)
                found.update(source.get("namespaces") or [])
    return found


def _principal(text: str) -> tuple[str | None, str | None] | None:
    """cluster.local/ns/<ns>/sa/<sa> -> (ns, sa); "*" parts -> None; unparsable -> None."""
    parts = text.split("/")
    if text == "*":
        return (None, None)
    if len(parts) >= 5 and parts[-4] == "ns" and parts[-2] == "sa":
        return (None if parts[-3] == "*" else parts[-3], None if parts[-1] == "*" else parts[-1])
    return None


def policy_plans(facts) -> list[PolicyPlan]:
    """One plan per ALLOW policy and waypoint-served Service it targets."""
    plans = []
    for policy in facts.authorization_policies:
        name = _meta(policy).get("name", "?")
        spec = policy.get("spec") or {}
        if (spec.get("action") or "ALLOW") != "ALLOW":
            continue
        targets = list(spec.get("targetRefs") or []) + ([spec["targetRef"]] if spec.get("targetRef") else [])
        services = []
        for target in targets:
            if target.get("kind") == "Service":
                services.append(target.get("name"))
            elif target.get("kind") == "Gateway":
                services += [_meta(s).get("name") for s in facts.services
                             if facts.service_waypoint(s) == (facts.namespace, target.get("name"))]
        rules = spec.get("rules") or []
        principals: list[tuple[str | None, str | None]] = []
        methods: list[str] = []
        path = "/"
        unsupported = [f for rule in rules for key in ("from", "to")
                       for item in rule.get(key) or [] for f in UNSUPPORTED_RULE_FIELDS
                       if f in (item.get("source") or item.get("operation") or {})] + \
                      [f for rule in rules for f in UNSUPPORTED_RULE_FIELDS if f in rule]
        for rule in rules:
            sources = [item.get("source") or {} for item in rule.get("from") or []]
            if not sources:
                principals.append((None, None))
            for source in sources:
                principals += [p for p in map(_principal, source.get("principals") or []) if p]
                principals += [(ns, None) for ns in source.get("namespaces") or []]
            for item in rule.get("to") or []:
                operation = item.get("operation") or {}
                methods += [m.upper() for m in operation.get("methods") or []]
                concrete = [p for p in operation.get("paths") or [] if "*" not in p]
                if concrete and path == "/":
                    path = concrete[0]
        for service_name in services:
            service = facts.service(service_name)
            subject = f"AuthorizationPolicy {name} -> Service {service_name}"
            url, problem = _service_url(facts, service_name, None, path)
            if problem is None and facts.service_waypoint(service) is None:
                problem = f"Service {service_name} is not served by a waypoint, which enforces L7 policies"
            if problem is None and unsupported:
                problem = (f"the policy uses {unsupported[0]}, which automatic probes do not model; "
                           "describe its probes in --probe-config")
            plans.append(PolicyPlan(name, service_name, subject, url, principals, sorted(set(methods)),
                                    ((service or {}).get("spec") or {}).get("selector") or {}, problem))
    return plans


def _allows(plan: PolicyPlan, namespace: str, service_account: str | None) -> bool:
    return any((ns is None or ns == namespace) and (sa is None or sa == service_account)
               for ns, sa in plan.allowed_principals)


MAX_CLIENT_TRIES = 3  # clients with curl tried in turn when a probe cannot start from one


def _clients(facts, spec: str | None, container: str | None, *, exclude: list[dict] = (), wanted=None,
             wanted_of_named: bool = False, description: str = "ready, mesh-enrolled client pod",
             hint_namespace: str | None = None) -> tuple[list, Outcome | None]:
    """Clients whose container runs curl: the one named (probe-config or --client) or pods found in
    the cluster, the namespace's own first; else the outcome saying why not and what to do.

    `wanted` filters found pods, and the named one too with `wanted_of_named`.
    `hint_namespace`: where Istio's curl sample would make a fitting client (None: it would not)."""
    from ..probe.engine import resolve_client

    if spec:
        namespace, _, rest = spec.partition("/") if spec.count("/") == 2 else ("", "", spec)
        client = resolve_client(facts.cluster, namespace or facts.namespace, rest, container)
        if wanted_of_named and wanted is not None and not wanted(client):
            return [], Outcome("skip", "-", f"skipped: --client {client.namespace}/{client.pod} runs as "
                                            f"{client.identity}, and this probe needs a {description} "
                                            "(name one in --probe-config)")
        problem = facts.curl.problem(client)
        if problem:
            return [], Outcome("inconclusive", "-", f"{problem}; pick a client with curl, or deploy Istio's curl "
                                                    f"sample: {deploy_curl_command(client.namespace)}",
                               hint=deploy_curl_command(client.namespace))
        return [client], None
    found = [c for c in facts.client_candidates
             if not _selected(c.labels, list(exclude)) and (wanted is None or wanted(c))]
    usable, problems = first_with_curl(facts.curl, found, MAX_CLIENT_TRIES)
    if usable:
        return usable, None
    return [], Outcome("inconclusive", "-", no_client_message(description, hint_namespace, problems),
                       hint=deploy_curl_command(hint_namespace) if hint_namespace else None)


def _route_telemetry(facts, plan: RoutePlan, client, notes: list[str]):
    """The waypoint's own count of who served this client's requests; None (the bodies decide, and
    `notes` says why) when it cannot be read."""
    from ..probe.telemetry import TelemetryUnavailable, for_route

    try:
        return for_route(facts.cluster, facts.namespace, plan.route, client.workload, client.namespace,
                         list(plan.weights))
    except TelemetryUnavailable as error:
        notes.append(f"Who served was read from the response bodies: {error.reason}")
        return None


def _probe(facts, clients: list, url, expectation, count, method, headers, *, alpha: float,
           min_availability: float | None = None, telemetry_for=None, max_requests: int | None = None):
    """Run the probe from the first client that can run it; one that cannot start passes to the next."""
    from ..errors import Inconclusive
    from ..probe.engine import run_probe

    limits = {} if min_availability is None else {"min_availability": min_availability}
    if max_requests is not None:
        limits["max_requests"] = max_requests
    problems = []
    for client in clients:
        telemetry = telemetry_for(client) if telemetry_for else None
        try:
            return run_probe(facts.cluster, client, url, expectation, count=count, method=method,
                             headers=tuple(headers), timeout_s=facts.options.timeout_s, alpha=alpha,
                             telemetry=telemetry, **limits)
        except Inconclusive as exc:
            problems.append(f"{client.namespace}/{client.pod}: {exc.message}")
    raise Inconclusive("no client pod could run the probe (" + "; ".join(problems) + ")")


def _evidence(client, url, verdict, method: str, headers) -> tuple[str, ...]:
    lines = [f"client: {client.namespace}/{client.pod} (service account {client.service_account})", f"url: {url}",
             f"method: {method}" + "".join(f", header {h}" for h in headers),
             f"requests: {verdict.requests}, statuses: " + ", ".join(f"{k}={v}" for k, v in verdict.statuses.items())]
    if verdict.backends:
        expected = verdict.expected or {}
        lines.append("backends: " + ", ".join(
            f"{b}={n}" + (f" (expected {expected[b]:.0%})" if b in expected else "") for b, n in verdict.backends.items()))
    if verdict.p_value is not None:
        lines.append(f"p-value: {verdict.p_value:.3g}")
    return tuple(lines)


def _authz(kind: str):
    """The three authorization checks share their plans; each probes one side of the policy."""

    def judge(facts) -> list[Outcome]:
        return run_bounded(facts, policy_plans(facts), lambda facts, plan: _authz_outcome(facts, plan, kind))

    return judge


def _authz_outcome(facts, plan: PolicyPlan, kind: str) -> Outcome:
    if plan.skip:
        return Outcome("skip", plan.subject, f"skipped: {plan.skip}")
    return _authz_probe(facts, plan, facts.options.probe_config.policies.get(plan.policy), kind)


def _authz_probe(facts, plan: PolicyPlan, configured, kind: str) -> Outcome:
    url = (configured and configured.url) or plan.url
    container = configured and configured.container
    allowed_method = (configured and configured.method) or (plan.methods[0] if plan.methods else "GET")
    exclude = [plan.target_selector] if plan.target_selector else []
    if kind == "denied-principal":
        if any(p == (None, None) for p in plan.allowed_principals):
            return Outcome("skip", plan.subject, "skipped: the policy allows every principal")
        named = configured and configured.denied_client

        def wanted(c):
            return not _allows(plan, c.namespace, c.service_account)

        description = "client pod outside the policy's principals"
        sample_namespace = facts.namespace if not _allows(plan, facts.namespace, CURL_SAMPLE_ACCOUNT) else None
        method, expectation = allowed_method, Expectation.denial("l7")
    else:
        if not plan.allowed_principals:
            return Outcome("skip", plan.subject, "skipped: the policy allows no principal")
        named = configured and configured.allowed_client

        def wanted(c):
            return _allows(plan, c.namespace, c.service_account)

        description = "client pod running as an allowed principal"
        sample_namespace = next((ns for ns, sa in plan.allowed_principals
                                 if ns and sa in (None, CURL_SAMPLE_ACCOUNT)), None)
        if kind == "allowed":
            method, expectation = allowed_method, Expectation.answered()
        else:
            if not plan.methods:
                return Outcome("skip", plan.subject, "skipped: the policy allows every method")
            method = (configured and configured.denied_method) or next(
                m for m in FALLBACK_DENIED_METHODS + ("OPTIONS",) if m not in plan.methods)
            expectation = Expectation.denial("l7")
    # A client named for this policy is taken as it is; --client only where its identity fits the probe.
    clients, why = _clients(facts, named or facts.options.client, container, exclude=exclude, wanted=wanted,
                            wanted_of_named=not named, description=description, hint_namespace=sample_namespace)
    if not clients:
        return replace(why, subject=plan.subject)
    count = (configured and configured.count) or DEFAULT_CHECK_COUNT
    headers = configured.headers if configured else ()
    outcome = _probe(facts, clients, url, expectation, count, method, headers, alpha=facts.options.alpha,
                     min_availability=1.0)
    verdict = outcome.verdict
    return Outcome(verdict.result, plan.subject, " ".join(verdict.reasons),
                   _evidence(outcome.client, url, verdict, method, headers))


authz_allowed = _authz("allowed")
authz_denied_principal = _authz("denied-principal")
authz_denied_method = _authz("denied-method")
