"""One judge per check id: facts in, outcomes out. Only the traffic checks (traffic.py) send requests."""

from __future__ import annotations

from ..errors import WaypointError
from ..skew import control_plane_index, judge_workloads
from ..sync import judge_proxy_version, judge_proxy_xds, judge_waypoint_sync
from ..render.text import plural
from ..versions import parse_version
from .runner import Outcome, worst
from . import traffic


def istiod_found(facts) -> list[Outcome]:
    planes = facts.inventory.control_planes
    if not planes:
        return [Outcome("fail", "istiod", "no istiod Deployment (label app=istiod) was found in any namespace")]
    listed = ", ".join(f"{p.revision} ({p.version.raw if p.version else 'version unknown'}) in {p.namespace}"
                       for p in planes)
    return [Outcome("pass", "istiod", f"istiod revisions: {listed}")]


def istiod_ready(facts) -> list[Outcome]:
    outcomes = []
    for plane in facts.inventory.control_planes:
        subject = f"{plane.namespace}/{plane.deployment}"
        counts = f"{plane.ready_replicas}/{plane.replicas} replicas ready"
        not_ready = [f"pod {p.name}: {p.phase}{'' if p.ready else ', not ready'}" for p in plane.pods if not p.ready]
        if plane.ready_replicas == 0:
            outcomes.append(Outcome("fail", subject, f"revision {plane.revision} has no ready istiod ({counts})",
                                    tuple(not_ready)))
        elif plane.ready_replicas < plane.replicas:
            outcomes.append(Outcome("warn", subject, f"revision {plane.revision}: {counts}", tuple(not_ready)))
        else:
            outcomes.append(Outcome("pass", subject, f"revision {plane.revision}: {counts}"))
    return outcomes


SAIL_CONDITIONS = ("Ready", "Reconciled")  # what the operator says about each of its resources


def _sail_health(kind: str, cr: dict) -> tuple[str, str, tuple[str, ...]]:
    """(status, message, evidence) of one Sail resource from its state and Ready/Reconciled conditions."""
    name = (cr.get("metadata") or {}).get("name", "?")
    spec, status = cr.get("spec") or {}, cr.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    state = status.get("state") or "unknown"
    evidence = (f"spec.version: {spec.get('version', 'unset')}", f"state: {state}") + tuple(
        f"{t}: {conditions[t].get('status')} {conditions[t].get('reason', '')} {conditions[t].get('message', '')}".strip()
        for t in SAIL_CONDITIONS if t in conditions)
    if not status:
        return "fail", f"{kind} {name} has no status: the Sail operator has not reconciled it (is it running?)", evidence
    not_true = [t for t in SAIL_CONDITIONS if (conditions.get(t) or {}).get("status") != "True"]
    if not_true:
        return "fail", f"{kind} {name}: " + "; ".join(_not_true(t, conditions.get(t)) for t in not_true), evidence
    if state != "Healthy":
        return "fail", f"{kind} {name} is {state}, not Healthy", evidence
    return "pass", f"{kind} {name} is Ready, Reconciled and Healthy, version {spec.get('version', 'unset')}", evidence


def _not_true(condition_type: str, condition: dict | None) -> str:
    if condition is None:
        return f"no {condition_type} condition"
    text = f"{condition_type} is {condition.get('status')}"
    return text + (f" ({condition['reason']}: {condition.get('message', '')})" if condition.get("reason") else "")


def sail_istio_status(facts) -> list[Outcome]:
    istios = facts.inventory.sail.istios
    if not istios:
        return [Outcome("skip", "-", "the Sail operator's Istio resource is not present (not a Sail install)")]
    outcomes = []
    for istio in istios:
        name = (istio.get("metadata") or {}).get("name", "?")
        spec, status = istio.get("spec") or {}, istio.get("status") or {}
        verdict, message, evidence = _sail_health("Istio", istio)
        # Both InPlace and RevisionBased work in ambient (Sail docs/update-strategy); with RevisionBased
        # each waypoint follows the revision in its istio.io/rev annotation, which is what is judged.
        strategy = (spec.get("updateStrategy") or {}).get("type") or "InPlace"
        evidence += (f"updateStrategy: {strategy}", f"activeRevisionName: {status.get('activeRevisionName', 'unset')}")
        if verdict == "pass":
            message += f", active revision {status.get('activeRevisionName', 'unset')} ({strategy})"
        outcomes.append(Outcome(verdict, f"Istio {name}", message, evidence))
    return outcomes


def _sail_resources(kind: str, attribute: str):
    def judge(facts) -> list[Outcome]:
        sail = facts.inventory.sail
        if not sail.installed:
            return [Outcome("skip", "-", f"the Sail operator's {kind} resource is not present (not a Sail install)")]
        crs = getattr(sail, attribute)
        if not crs:
            return [Outcome("skip", "-", f"no {kind} resource: this Sail install does not manage {kind.lower()}")]
        outcomes = []
        for cr in crs:
            verdict, message, evidence = _sail_health(kind, cr)
            outcomes.append(Outcome(verdict, f"{kind} {(cr.get('metadata') or {}).get('name', '?')}", message, evidence))
        return outcomes
    return judge


def namespace_exists(facts) -> list[Outcome]:
    if facts.namespace_object is None:
        return [Outcome("fail", facts.namespace, f'namespace "{facts.namespace}" does not exist')]
    return [Outcome("pass", facts.namespace, f'namespace "{facts.namespace}" exists')]


def gateway_api_installed(facts) -> list[Outcome]:
    if not facts.gateway_api:
        return [Outcome("fail", "gateway.networking.k8s.io",
                        "the Gateway API (gateway.networking.k8s.io/v1) is not installed, so no waypoint can exist")]
    return [Outcome("pass", "gateway.networking.k8s.io", "the Gateway API is installed")]


def waypoint_found(facts) -> list[Outcome]:
    refs = facts.waypoints
    if not refs:
        return [Outcome("warn", facts.namespace,
                        f'namespace "{facts.namespace}" uses no waypoint: no istio.io/use-waypoint label on it or '
                        "its services and no waypoint Gateway in it, so there is nothing L7 to verify")]
    outcomes = []
    for ref in refs:
        subject = f"{ref.namespace}/{ref.name}"
        if (ref.namespace, ref.name) not in facts.waypoint_gateways:
            outcomes.append(Outcome("fail", subject,
                                    f"waypoint {subject} is referenced ({'; '.join(ref.sources)}) but no waypoint "
                                    f"Gateway (class of controller istio.io/mesh-controller) named {ref.name} exists "
                                    f"in {ref.namespace}", ref.sources))
        else:
            outcomes.append(Outcome("pass", subject, f"waypoint {subject} serves the namespace ({'; '.join(ref.sources)})"))
    return outcomes


def _existing_waypoints(facts):
    return [ref for ref in facts.waypoints if (ref.namespace, ref.name) in facts.waypoint_gateways]


def waypoint_programmed(facts) -> list[Outcome]:
    outcomes = []
    for ref in _existing_waypoints(facts):
        gateway = facts.waypoint_gateways[(ref.namespace, ref.name)]
        subject = f"{ref.namespace}/{ref.name}"
        condition = next((c for c in gateway["conditions"] if c.get("type") == "Programmed"), None)
        if condition and condition.get("status") == "True":
            outcomes.append(Outcome("pass", subject, f"Gateway {subject} is Programmed"))
        else:
            why = (f"{condition.get('reason', '')}: {condition.get('message', '')}" if condition
                   else "no Programmed condition in its status")
            outcomes.append(Outcome("fail", subject, f"Gateway {subject} is not Programmed ({why})"))
    return outcomes


def waypoint_deployment_available(facts) -> list[Outcome]:
    outcomes = []
    for ref in _existing_waypoints(facts):
        subject = f"{ref.namespace}/{ref.name}"
        deployment = facts.waypoint_deployments.get((ref.namespace, ref.name))
        if deployment is None:
            outcomes.append(Outcome("fail", subject, f"waypoint {subject} has no Deployment labelled "
                                    f"gateway.networking.k8s.io/gateway-name={ref.name}"))
            continue
        spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
        wanted = spec.get("replicas", 1)
        available = status.get("availableReplicas") or 0
        updated = status.get("updatedReplicas") or 0
        evidence = (f"replicas: {wanted}", f"available: {available}", f"updated: {updated}")
        if available < max(wanted, 1):
            outcomes.append(Outcome("fail", subject, f"Deployment {subject}: {available}/{wanted} replicas available",
                                    evidence))
        elif updated < wanted:
            outcomes.append(Outcome("warn", subject, f"Deployment {subject} is still rolling out "
                                    f"({updated}/{wanted} replicas updated)", evidence))
        else:
            outcomes.append(Outcome("pass", subject, f"Deployment {subject}: {available}/{wanted} replicas available"))
    return outcomes


def waypoint_pods_ready(facts) -> list[Outcome]:
    outcomes = []
    for ref in _existing_waypoints(facts):
        subject = f"{ref.namespace}/{ref.name}"
        pods = facts.waypoint_pods(ref)
        if not pods:
            outcomes.append(Outcome("fail", subject, f"waypoint {subject} has no pods"))
            continue
        bad = [f"{p.name}: {p.phase}{'' if p.ready else ', not ready'}" for p in pods
               if p.phase != "Running" or not p.ready]
        if bad:
            outcomes.append(Outcome("fail", subject, f"{len(bad)} of {len(pods)} waypoint pods are not ready", tuple(bad)))
        else:
            outcomes.append(Outcome("pass", subject, f"{plural(len(pods), 'waypoint pod')} running and ready"))
    return outcomes


def waypoint_restarts(facts) -> list[Outcome]:
    outcomes = []
    for ref in _existing_waypoints(facts):
        subject = f"{ref.namespace}/{ref.name}"
        restarted = [f"{p.name}: {plural(p.restarts, 'restart')}" for p in facts.waypoint_pods(ref) if p.restarts]
        if restarted:
            outcomes.append(Outcome("warn", subject, "waypoint pods restarted since they started", tuple(restarted)))
        else:
            outcomes.append(Outcome("pass", subject, "no restarts"))
    return outcomes


def sync_status_available(facts) -> list[Outcome]:
    sync = facts.sync
    if sync.debug_off and not sync.read_from:
        return [Outcome("warn", "istiod", f"istiod's debug endpoint is off (ENABLE_DEBUG_ON_HTTP=false): /debug/syncz "
                        f"answers '404 page not found' in {', '.join(sync.debug_off)}, so each waypoint's sync is "
                        "judged from its own Envoy stats instead", tuple(sync.problems))]
    if sync.problems and not sync.read_from:
        return [Outcome("inconclusive", "istiod", "istiod's sync status could not be read: " + sync.problems[0],
                        tuple(sync.problems[1:]))]
    if sync.problems:
        return [Outcome("warn", "istiod", f"sync status read from {', '.join(sync.read_from)} but not from every "
                        "istiod: " + sync.problems[0], tuple(sync.problems))]
    return [Outcome("pass", "istiod", f"sync status of {len(sync.records)} proxies read from {sync.source} "
                    f"({', '.join(sync.read_from)})")]


def _waypoint_pods_with_sync(facts):
    for ref in _existing_waypoints(facts):
        for pod in facts.waypoint_pods(ref):
            yield ref, pod, facts.sync.records.get(f"{pod.name}.{pod.namespace}")


def _stats_source(pod) -> str:
    return f"source: pilot-agent request GET stats/prometheus in {pod.namespace}/{pod.name}"


def _unread_by_istiod(facts) -> str:
    """Why istiod's records may lack a proxy that is connected after all."""
    return f"istiod's sync status does not cover every istiod ({facts.sync.problems[0]})"


def waypoint_sync(facts) -> list[Outcome]:
    outcomes = []
    for ref, pod, record in _waypoint_pods_with_sync(facts):
        subject = f"{pod.namespace}/{pod.name}"
        if record is None and not facts.sync.complete:  # not in the answers read: ask the proxy itself
            try:
                finding = judge_proxy_xds(facts.proxy_xds(pod))
            except WaypointError as exc:
                outcomes.append(Outcome("inconclusive", subject, f"{_unread_by_istiod(facts)} and the waypoint's own "
                                        f"Envoy stats could not be read: {exc.message}", tuple(facts.sync.problems)))
                continue
            outcomes.append(Outcome(finding.status, subject, finding.message, finding.evidence + (_stats_source(pod),)))
            continue
        findings = judge_waypoint_sync(record, pod.name, pod.namespace, None)
        findings = findings if record is None else findings[:-1]  # the last finding is the version
        status = worst(f.status for f in findings)
        evidence = tuple(e for f in findings for e in f.evidence)
        outcomes.append(Outcome(status, subject, " ".join(f.message for f in findings if f.status == status), evidence))
    return outcomes


def _control_plane_version(facts, plane):
    """The version istiod reports (/version) when its pods agree, else its image tag; evidence of both."""
    if plane is None:
        return None, ("its control plane could not be resolved",)
    image = plane.version
    evidence = [f"control plane {plane.namespace}/{plane.revision}: image tag {image.raw if image else 'unknown'}"]
    reports = [facts.istiod_versions[p.name] for p in plane.pods if p.name in facts.istiod_versions]
    evidence += [f"istiod {r.namespace}/{r.pod} reports {r.reported} (/version)" if r.reported
                 else f"istiod {r.namespace}/{r.pod}: {r.problem}" for r in reports]
    reported = {r.reported for r in reports if r.reported}
    if len(reported) != 1:
        evidence.append("judged against the image tag" + (": istiod pods report different versions"
                                                          if reported else ""))
        return image, tuple(evidence)
    version = parse_version(reported.pop())
    if image and version and (image.major, image.minor, image.patch) != (version.major, version.minor, version.patch):
        evidence.append(f"mismatch: the image tag says {image.raw} but istiod reports {version.raw}; judged against "
                        "what istiod reports")
    return version or image, tuple(evidence)


def waypoint_proxy_version(facts) -> list[Outcome]:
    outcomes = []
    index = control_plane_index(facts.inventory)
    claims = {(pod.namespace, pod.name): w.claim
              for w in facts.inventory.data_plane if w.kind == "waypoint" for pod in w.pods}
    for ref, pod, record in _waypoint_pods_with_sync(facts):
        subject = f"{pod.namespace}/{pod.name}"
        if record is not None:
            version, source = record.version, "proxy version as istiod reports it"
        elif facts.sync.complete:
            outcomes.append(Outcome("skip", subject, "not connected to istiod, so no proxy version was reported"))
            continue
        else:
            try:
                version, source = facts.proxy_xds(pod).version, _stats_source(pod) + " (istio_build)"
            except WaypointError as exc:
                outcomes.append(Outcome("inconclusive", subject, f"{_unread_by_istiod(facts)} and the waypoint's own "
                                        f"Envoy stats could not be read: {exc.message}"))
                continue
        plane, _ = index.resolve(claims[(pod.namespace, pod.name)])
        control_plane, against = _control_plane_version(facts, plane)
        finding = judge_proxy_version(version, pod.name, pod.namespace, control_plane)
        outcomes.append(Outcome(finding.status, subject, finding.message, finding.evidence + (source,) + against))
    return outcomes


def _skew_of(kind: str):
    def judge(facts) -> list[Outcome]:
        outcomes = []
        for component in judge_workloads(facts.inventory, (kind,)):
            status = {"ok": "warn" if component.minor_skew else "pass", "ahead": "fail", "too-old": "fail",
                      "unknown": "warn"}[component.status]
            outcomes.append(Outcome(status, f"{component.namespace}/{component.workload} {component.version or ''}".strip(),
                                    component.message,
                                    (f"pods: {len(component.pods)}", f"source: {component.source}",
                                     f"control plane: {component.control_plane or 'none'} "
                                     f"({component.owner_source})")))
        if not outcomes:
            return [Outcome("warn", kind, f"no {kind} pods were found in any namespace")]
        return outcomes
    return judge


JUDGES = {
    "istiod-found": istiod_found,
    "istiod-ready": istiod_ready,
    "sail-istio-status": sail_istio_status,
    "sail-ztunnel-status": _sail_resources("ZTunnel", "ztunnels"),
    "sail-istio-cni-status": _sail_resources("IstioCNI", "cnis"),
    "namespace-exists": namespace_exists,
    "gateway-api-installed": gateway_api_installed,
    "waypoint-found": waypoint_found,
    "waypoint-programmed": waypoint_programmed,
    "waypoint-deployment-available": waypoint_deployment_available,
    "waypoint-pods-ready": waypoint_pods_ready,
    "waypoint-restarts": waypoint_restarts,
    "sync-status-available": sync_status_available,
    "waypoint-sync": waypoint_sync,
    "waypoint-proxy-version": waypoint_proxy_version,
    "ztunnel-skew": _skew_of("ztunnel"),
    "istio-cni-skew": _skew_of("istio-cni"),
    "route-split": traffic.route_split,
    "authz-allowed": traffic.authz_allowed,
    "authz-denied-principal": traffic.authz_denied_principal,
    "authz-denied-method": traffic.authz_denied_method,
}
