"""Routing and authorization checks: derive probes from HTTPRoutes and AuthorizationPolicies, run them.

Derivation is plain data (RoutePlan, PolicyPlan) so it can be tested without a cluster; the
probes themselves reuse `kubectl waypoint probe`'s engine and statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..probe.expectations import DEFAULT_CHECK_COUNT, Expectation, compile_match, default_count
from .runner import Outcome

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


def route_plans(facts) -> list[RoutePlan]:
    """One plan per HTTPRoute rule with two or more backends, attached to a Service."""
    plans = []
    for route in facts.httproutes:
        name = _meta(route).get("name", "?")
        spec = route.get("spec") or {}
        for parent in spec.get("parentRefs") or []:
            if parent.get("kind") != "Service" or parent.get("group") not in ("", None):
                continue
            for rule in spec.get("rules") or []:
                backends = [b for b in rule.get("backendRefs") or [] if b.get("kind", "Service") == "Service"]
                if len(backends) < 2:
                    continue
                path = "/"
                for match in rule.get("matches") or []:
                    value = (match.get("path") or {}).get("value")
                    if value:
                        path = value
                        break
                subject = f"HTTPRoute {name} -> Service {parent.get('name')}"
                url, problem = _service_url(facts, parent.get("name"), parent.get("port"), path)
                service = facts.service(parent.get("name"))
                if problem is None and facts.service_waypoint(service) is None:
                    problem = (f"Service {parent.get('name')} is not served by a waypoint, so its HTTPRoute is not "
                               "applied in ambient mode")
                selectors = [((facts.service(b["name"]) or {}).get("spec") or {}).get("selector") or {}
                             for b in backends] + [((service or {}).get("spec") or {}).get("selector") or {}]
                plans.append(RoutePlan(name, subject, url, {b["name"]: b.get("weight") for b in backends},
                                       [s for s in selectors if s], problem))
    return plans


def _selected(labels: dict, selectors: list[dict]) -> bool:
    return any(all(labels.get(k) == v for k, v in s.items()) for s in selectors)


def route_split(facts) -> list[Outcome]:
    return run_bounded(facts, route_plans(facts), _route_outcome)


def _route_outcome(facts, plan: RoutePlan) -> Outcome:
    if plan.skip:
        return Outcome("skip", plan.subject, f"skipped: {plan.skip}")
    configured = facts.options.probe_config.routes.get(plan.route)
    url = (configured and configured.url) or plan.url
    match = compile_match(configured.match) if configured and configured.match else None
    expectation = Expectation.split(plan.weights, match=match)
    clients, why = _clients(facts, configured and configured.client, configured and configured.container,
                            exclude=plan.exclude_selectors)
    if not clients:
        return Outcome("skip", plan.subject, f"skipped: {why}")
    count = (configured and configured.count) or default_count(expectation, facts.options.alpha)
    outcome = _probe(facts, clients, url, expectation, count, "GET", configured.headers if configured else ())
    verdict = outcome.verdict
    evidence = _evidence(outcome.client, url, verdict)
    backends = verdict.backends or {}
    named = sum(n for b, n in backends.items() if b != "unmatched")
    if backends.get("unmatched") and not named:
        return Outcome("warn", plan.subject,
                       f"none of the responses named a backend ({', '.join(plan.weights)}), so the split could not "
                       "be measured; describe the probe (url, match) in --probe-config", evidence)
    return Outcome(verdict.result, plan.subject, " ".join(verdict.reasons), evidence)


def run_bounded(facts, plans: list, judge) -> list[Outcome]:
    """Judge each plan, up to --parallel probes at a time, keeping the plans' order.

    Facts the probes share are read first, so that threads never race to fill the same cache.
    """
    plans = list(plans)
    runnable = [p for p in plans if not p.skip]
    if len(runnable) > 1 and facts.options.parallel > 1:
        facts.client_candidates  # noqa: B018  (fill the cache before the threads start)
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


MAX_CLIENT_TRIES = 3  # candidates tried when a pod cannot run curl (many application images have none)


def _clients(facts, spec: str | None, container: str | None, *, exclude: list[dict] = (), wanted=None,
             description: str = "ready, mesh-enrolled client pod") -> tuple[list, str | None]:
    """A configured client, the --client override, or suitable pods found in the cluster (best first)."""
    from ..probe.engine import resolve_client

    spec = spec or (facts.options.client if wanted is None else None)
    if spec:
        namespace, _, rest = spec.rpartition("/") if spec.count("/") == 2 else ("", "", spec)
        return [resolve_client(facts.cluster, namespace or facts.namespace, rest, container)], None
    found = [c for c in facts.client_candidates
             if not _selected(c.labels, list(exclude)) and (wanted is None or wanted(c))]
    if not found:
        return [], f"no {description} was found; pass --client or describe the probe in --probe-config"
    return found[:MAX_CLIENT_TRIES], None


def _probe(facts, clients: list, url, expectation, count, method, headers):
    """Run the probe from the first client that can run it; a pod without curl passes to the next."""
    from ..errors import Inconclusive
    from ..probe.engine import run_probe

    problems = []
    for client in clients:
        try:
            return run_probe(facts.cluster, client, url, expectation, count=count, method=method,
                             headers=tuple(headers), timeout_s=facts.options.timeout_s, alpha=facts.options.alpha,
                             min_availability=1.0)
        except Inconclusive as exc:
            problems.append(f"{client.namespace}/{client.pod}: {exc.message}")
    raise Inconclusive("no client pod could run the probe (" + "; ".join(problems) + ")")


def _evidence(client, url, verdict) -> tuple[str, ...]:
    lines = [f"client: {client.namespace}/{client.pod} (service account {client.service_account})", f"url: {url}",
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
        clients, why = _clients(facts, configured and configured.denied_client, container, exclude=exclude,
                                wanted=lambda c: not _allows(plan, c.namespace, c.service_account),
                                description="client pod outside the policy's principals")
        method, expectation = allowed_method, Expectation.denial("l7")
    else:
        if not plan.allowed_principals:
            return Outcome("skip", plan.subject, "skipped: the policy allows no principal")
        clients, why = _clients(facts, configured and configured.allowed_client, container, exclude=exclude,
                                wanted=lambda c: _allows(plan, c.namespace, c.service_account),
                                description="client pod running as an allowed principal")
        if kind == "allowed":
            method, expectation = allowed_method, Expectation.answered()
        else:
            if not plan.methods:
                return Outcome("skip", plan.subject, "skipped: the policy allows every method")
            method = (configured and configured.denied_method) or next(
                m for m in FALLBACK_DENIED_METHODS + ("OPTIONS",) if m not in plan.methods)
            expectation = Expectation.denial("l7")
    if not clients:
        return Outcome("skip", plan.subject, f"skipped: {why}")
    count = (configured and configured.count) or DEFAULT_CHECK_COUNT
    outcome = _probe(facts, clients, url, expectation, count, method, configured.headers if configured else ())
    verdict = outcome.verdict
    evidence = (f"method: {method}",) + _evidence(outcome.client, url, verdict)
    return Outcome(verdict.result, plan.subject, " ".join(verdict.reasons), evidence)


authz_allowed = _authz("allowed")
authz_denied_principal = _authz("denied-principal")
authz_denied_method = _authz("denied-method")
