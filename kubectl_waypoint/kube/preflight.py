"""What each command may do to the API server, asked in advance, and the RBAC that grants it.

One declarative list (PERMISSIONS) is the single source of truth: `preflight` asks the API server
about it with SelfSubjectAccessReviews before a command starts, and `render_cluster_role` (and
`kubectl waypoint rbac`) turn it into the least-privilege RBAC the README shows, so the documented
role and what the tool checks cannot drift apart. A missing core permission ends the command
(exit 3) with every missing rule named at once; a missing optional one only weakens a check and
becomes a warning. Resources of CRDs the cluster does not serve (Sail, Gateway API) are not asked.

Every exec is asked twice. The Python client execs over WebSocket, which the API server authorizes
as `get pods/exec` on every version and, from Kubernetes 1.35, also as `create pods/exec`
(feature AuthorizePodWebsocketUpgradeCreatePermission, beta and on by default; KEP-4006). The
role grants both; on an older server a missing `create` is only a warning, since it works there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Collection, Iterable, Sequence

from .. import logs
from ..errors import ClusterUnavailable, WaypointError
from . import resources as r
from .client import PermissionDenied
from .resources import Resource

if TYPE_CHECKING:
    from .client import Cluster

log = logs.getLogger(__name__)

CLUSTER = "cluster"  # every namespace, or a cluster-scoped resource: a ClusterRole
TARGET = "target"  # the command's namespace (-n); every namespace when it has none (skew -A)
CONTROL_PLANE = "control-plane"  # the namespace istiod runs in
WAYPOINT = "waypoint"  # the namespaces of the waypoints serving the command's namespace (default: that one)
SCOPES = (CLUSTER, TARGET, CONTROL_PLANE, WAYPOINT)
DEFAULT_CONTROL_PLANE_NAMESPACE = "istio-system"
COMMANDS = ("skew", "verify", "probe", "watch")
ROLE_NAME = "kubectl-waypoint"
EXEC_VERBS = ("get", "create")  # how the API server authorizes a WebSocket exec (see above)
CREATE_EXEC_FROM = (1, 35)  # the Kubernetes version that also checks `create` for a WebSocket exec


@dataclass(frozen=True)
class Permission:
    """One thing a command asks the API server to do; `degrades` says what is lost without it."""

    commands: tuple[str, ...]
    verb: str
    resource: Resource
    scope: str
    core: bool
    degrades: str = ""  # for optional permissions: what the user loses without it
    subresource: str = ""
    checks: tuple[str, ...] = ()  # verify: the check ids that need it (empty: the whole command)

    @property
    def is_exec(self) -> bool:
        return self.resource.plural == "pods" and self.subresource == "exec"

    @property
    def rbac_resource(self) -> str:
        return f"{self.resource.plural}/{self.subresource}" if self.subresource else self.resource.plural

    def namespace_for(self, namespace: str | None, control_plane_namespace: str) -> str | None:
        """The namespace to ask about; None means every namespace (or a cluster-scoped resource)."""
        if self.scope == CLUSTER or not self.resource.namespaced:
            return None
        if self.scope == CONTROL_PLANE:
            return control_plane_namespace
        return namespace

    def rule(self) -> str:
        """The RBAC rule granting it, on one line; for exec, both verbs a WebSocket exec needs."""
        verbs = ", ".join(f'"{verb}"' for verb in (EXEC_VERBS if self.is_exec else (self.verb,)))
        return f'{{apiGroups: ["{self.resource.group}"], resources: ["{self.rbac_resource}"], verbs: [{verbs}]}}'

    def grant(self) -> str:
        """What to ask the admin for, in words."""
        if self.is_exec:
            return f"grant {' and '.join(EXEC_VERBS)} on pods/exec with the rule {self.rule()}"
        return f"grant it with the rule {self.rule()}"

    def describe(self, namespace: str | None, verbs: Sequence[str] = ()) -> str:
        what = self.resource.rbac_name() + (f"/{self.subresource}" if self.subresource else "")
        where = f'in namespace "{namespace}"' if namespace else (
            "in every namespace" if self.resource.namespaced else "(cluster-scoped)")
        return f"{' and '.join(verbs or (self.verb,))} {what} {where}"


_VERIFY, _SKEW, _PROBE, _WATCH = ("verify", "watch"), ("skew",), ("probe",), ("watch",)  # watch ends with verify
_INVENTORY = ("skew", "verify", "watch")


def _exec(commands: tuple[str, ...], scope: str, core: bool, degrades: str = "",
          checks: tuple[str, ...] = ()) -> tuple[Permission, ...]:
    """One exec the command needs, as the two authorizations a WebSocket exec gets."""
    return tuple(Permission(commands, verb, r.PODS, scope, core, degrades, "exec", checks) for verb in EXEC_VERBS)


PERMISSIONS: tuple[Permission, ...] = (
    # The mesh inventory: istiod, revision tags, data-plane pods and waypoint Gateways, found by label anywhere.
    Permission(_INVENTORY, "list", r.PODS, CLUSTER, True),
    Permission(_INVENTORY, "list", r.DEPLOYMENTS, CLUSTER, True),
    Permission(_INVENTORY, "list", r.MUTATING_WEBHOOKS, CLUSTER, True),
    Permission(_SKEW, "list", r.GATEWAYS, TARGET, True),
    Permission(_VERIFY, "list", r.GATEWAYS, CLUSTER, True),
    Permission(_INVENTORY, "list", r.SAIL_ISTIOS, CLUSTER, True),
    Permission(_INVENTORY, "list", r.SAIL_REVISIONS, CLUSTER, True),
    Permission(_INVENTORY, "list", r.SAIL_CNIS, CLUSTER, True),
    Permission(_INVENTORY, "list", r.SAIL_ZTUNNELS, CLUSTER, True),
    # Which Gateways are waypoints (their class's controller) and which istiod owns what (tag Services).
    Permission(_INVENTORY, "list", r.GATEWAY_CLASSES, CLUSTER, False, "waypoints are recognised by Istio's "
               "default class names only, not by their GatewayClass's controller"),
    Permission(_INVENTORY, "list", r.SERVICES, CLUSTER, False, "revision tags that exist only as Services "
               "(istiod-revision-tag-*) are not seen, and ztunnel's istiod is matched by name"),
    # verify: the namespace under test.
    Permission(_VERIFY, "get", r.NAMESPACES, CLUSTER, True),
    Permission(_VERIFY, "list", r.SERVICES, TARGET, True),
    Permission(_VERIFY, "list", r.DEPLOYMENTS, TARGET, False, "waypoint Deployments cannot be read, so "
               "waypoint-deployment-available is inconclusive", checks=("waypoint-deployment-available",)),
    *_exec(_VERIFY, CONTROL_PLANE, False, "istiod's sync status cannot be read, so sync-status-available is "
           "inconclusive (--proxy-status-file avoids it)",
           checks=("sync-status-available", "waypoint-sync", "waypoint-proxy-version")),
    *_exec(_VERIFY, WAYPOINT, False, "the waypoints' own Envoy stats and telemetry cannot be read, so waypoint "
           "sync cannot be judged without istiod's debug endpoint and splits are measured from response bodies",
           checks=("waypoint-sync", "waypoint-proxy-version", "route-split")),
    Permission(_VERIFY, "list", r.HTTPROUTES, TARGET, False, "HTTPRoutes cannot be read, so route-split is "
               "inconclusive", checks=("route-split",)),
    Permission(_VERIFY, "list", r.AUTHORIZATION_POLICIES, TARGET, False, "AuthorizationPolicies cannot be read, "
               "so the authorization checks are inconclusive",
               checks=("authz-allowed", "authz-denied-principal", "authz-denied-method")),
    *_exec(_VERIFY, TARGET, False, "no probe can be sent from a pod in the namespace, so the routing and "
           "authorization checks are inconclusive",
           checks=("route-split", "authz-allowed", "authz-denied-principal", "authz-denied-method")),
    # watch: the control plane, node agents and the namespace's waypoints followed with the watch API.
    *(Permission(_WATCH, verb, resource, CLUSTER, True) for resource in (r.PODS, r.DEPLOYMENTS, r.DAEMONSETS)
      for verb in ("list", "watch")),
    Permission(_WATCH, "watch", r.GATEWAYS, TARGET, True),
    *(Permission(_WATCH, "watch", resource, CLUSTER, True)
      for resource in (r.SAIL_ISTIOS, r.SAIL_REVISIONS, r.SAIL_CNIS, r.SAIL_ZTUNNELS)),
    # probe: the client pod and the exec that runs curl in it.
    Permission(_PROBE, "get", r.PODS, TARGET, True),
    *_exec(_PROBE, TARGET, True),
    *_exec(_PROBE, WAYPOINT, False, "the waypoint's own telemetry cannot be read, so the split is measured "
           "from response bodies (--match)"),
    Permission(_PROBE, "get", r.DEPLOYMENTS, TARGET, False,
               "a deploy/NAME client cannot be resolved; name the pod (pod/NAME) instead"),
    Permission(_PROBE, "list", r.PODS, TARGET, False,
               "a deploy/NAME client cannot be resolved; name the pod (pod/NAME) instead"),
    Permission(_PROBE, "get", r.NAMESPACES, CLUSTER, False,
               "whether the client pod is in the ambient mesh cannot be checked"),
    Permission(_PROBE, "get", r.HTTPROUTES, TARGET, False, "--route cannot read the expected split; "
               "pass --expect-split instead"),
)


def permissions_for(command: str, checks: Collection[str] | None = None) -> list[Permission]:
    """What `command` needs; for verify, only what the selected `checks` (ids) need when given."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    return [p for p in PERMISSIONS if command in p.commands
            and (checks is None or not p.checks or any(c in checks for c in p.checks))]


# -- asking the API server -----------------------------------------------------------------------

@dataclass(frozen=True)
class Missing:
    permission: Permission
    namespace: str | None
    verbs: tuple[str, ...] = ()  # the verbs missing (both of an exec's, when both are)

    def describe(self) -> str:
        return self.permission.describe(self.namespace, self.verbs)


def access_review(permission: Permission, namespace: str | None) -> dict:
    """The SelfSubjectAccessReview body asking whether the current user may do `permission`."""
    attributes = {"verb": permission.verb, "group": permission.resource.group,
                  "resource": permission.resource.plural}
    if permission.subresource:
        attributes["subresource"] = permission.subresource
    if namespace:
        attributes["namespace"] = namespace
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}


def find_missing(cluster: "Cluster", permissions: Iterable[Permission], namespace: str | None,
                 control_plane_namespace: str = DEFAULT_CONTROL_PLANE_NAMESPACE,
                 waypoint_namespaces: Sequence[str] | None = None) -> list[Missing]:
    """Ask about each permission once (one review per distinct question); CRDs not served are skipped.

    A waypoint-scoped permission is asked in each of `waypoint_namespaces` (default: `namespace`).
    """
    missing: list[Missing] = []
    answers: dict[tuple, bool] = {}
    for permission in permissions:
        if permission.resource.group and not cluster.has_api(permission.resource):
            continue  # a CRD this cluster does not have: nothing to read, nothing to grant
        places = [permission.namespace_for(namespace, control_plane_namespace)]
        if permission.scope == WAYPOINT and namespace and waypoint_namespaces:
            places = list(dict.fromkeys(waypoint_namespaces))
        for where in places:
            body = access_review(permission, where)
            key = tuple(sorted(body["spec"]["resourceAttributes"].items()))
            if key not in answers:
                review = cluster.request_json("POST", r.SELF_SUBJECT_ACCESS_REVIEWS.path(), body=body,
                                              resource=r.SELF_SUBJECT_ACCESS_REVIEWS, verb="create", retry=True)
                answers[key] = bool((review.get("status") or {}).get("allowed"))
            if not answers[key]:
                missing.append(Missing(permission, where, (permission.verb,)))
    return _one_per_exec(missing)


def _one_per_exec(missing: list[Missing]) -> list[Missing]:
    """An exec's two missing verbs as one entry (they come in pairs from _exec)."""
    merged: list[Missing] = []
    for entry in missing:
        last = merged[-1] if merged else None
        if last and entry.permission.is_exec and last.permission.is_exec and last.namespace == entry.namespace \
                and (last.permission.commands, last.permission.scope) == (entry.permission.commands, entry.permission.scope):
            merged[-1] = Missing(last.permission, last.namespace, last.verbs + entry.verbs)
        else:
            merged.append(entry)
    return merged


def kubernetes_version(version_document: dict) -> tuple[int, int] | None:
    """(major, minor) from the API server's /version (`gitVersion` like v1.35.0-gke.1); None if unreadable."""
    found = re.match(r"v?(\d+)\.(\d+)", str(version_document.get("gitVersion") or ""))
    return (int(found[1]), int(found[2])) if found else None


def _server_version(cluster: "Cluster") -> tuple[int, int] | None:
    try:
        return kubernetes_version(cluster.request_json("GET", "/version"))
    except ClusterUnavailable:
        raise
    except WaypointError as exc:
        log.debug("server version unreadable: %s", exc.message)
        return None


def is_needed(missing: Missing, server: tuple[int, int] | None) -> bool:
    """Whether this API server checks it: `create pods/exec` alone only from 1.35 (unknown version: yes)."""
    return not (missing.permission.is_exec and missing.verbs == ("create",)
                and server is not None and server < CREATE_EXEC_FROM)


def preflight(cluster: "Cluster", command: str, namespace: str | None, *, checks: Collection[str] | None = None,
              control_plane_namespace: str = DEFAULT_CONTROL_PLANE_NAMESPACE,
              waypoint_namespaces: Sequence[str] | None = None) -> list[str]:
    """Check every permission `command` needs before it starts; warnings for the optional ones.

    Raises ClusterUnavailable (exit 3) naming every missing core permission and its RBAC rule.
    `namespace` is the command's namespace, None for skew -A. If the server cannot answer access
    reviews at all, the command goes ahead with a warning (it would fail on the first read anyway).
    """
    try:
        missing = find_missing(cluster, permissions_for(command, checks), namespace, control_plane_namespace,
                               waypoint_namespaces)
    except PermissionDenied as exc:  # a hardened cluster that forbids access reviews themselves
        log.debug("access review forbidden: %s", exc.message)
        return ["permissions could not be checked in advance (access reviews are forbidden); continuing"]
    except ClusterUnavailable:
        raise
    except WaypointError as exc:  # an API server without the authorization API
        log.debug("access review failed: %s", exc.message)
        return [f"permissions could not be checked in advance ({exc.message}); continuing"]
    server = _server_version(cluster) if any(m.permission.is_exec for m in missing) else None
    core = [m for m in missing if m.permission.core and is_needed(m, server)]
    if core:
        raise ClusterUnavailable(missing_core_message(command, core))
    return warnings_for(missing, server)


def warnings_for(missing: Sequence[Missing], server: tuple[int, int] | None) -> list[str]:
    """One warning per missing permission and place, with everything lost without it."""
    lost: dict[str, list[str]] = {}
    grants: dict[str, str] = {}
    for entry in missing:
        if is_needed(entry, server):
            why = entry.permission.degrades
        else:
            why = (f"this Kubernetes {server[0]}.{server[1]} API server does not check it, but from "
                   f"{CREATE_EXEC_FROM[0]}.{CREATE_EXEC_FROM[1]} every exec needs it")
        reasons = lost.setdefault(entry.describe(), [])
        if why not in reasons:
            reasons.append(why)
        grants[entry.describe()] = entry.permission.grant()
    return [f"cannot {what} ({'; '.join(reasons)}); {grants[what]}" for what, reasons in lost.items()]


def missing_core_message(command: str, missing: Sequence[Missing]) -> str:
    listed = "; ".join(f"{m.describe()}: {m.permission.grant()}" for m in missing)
    permissions = "permission" if len(missing) == 1 else "permissions"
    return (f"kubectl waypoint {command} lacks {len(missing)} {permissions} it needs: {listed}; "
            f"kubectl waypoint rbac --command {command} prints the roles that grant them, for your cluster admin")


# -- rendering RBAC ------------------------------------------------------------------------------

def rules_for(permissions: Iterable[Permission]) -> list[dict]:
    """RBAC rules: one per API group and set of verbs, groups and resources in first-seen order."""
    verbs_of: dict[str, dict[str, list[str]]] = {}
    for p in permissions:
        verbs = verbs_of.setdefault(p.resource.group, {}).setdefault(p.rbac_resource, [])
        if p.verb not in verbs:
            verbs.append(p.verb)
    rules = []
    for group, resources in verbs_of.items():
        by_verbs: dict[tuple[str, ...], list[str]] = {}
        for resource, verbs in resources.items():
            by_verbs.setdefault(tuple(sorted(verbs)), []).append(resource)
        rules += [{"apiGroups": [group], "resources": names, "verbs": list(verbs)} for verbs, names in by_verbs.items()]
    return rules


def rules_for_command(command: str) -> list[dict]:
    """The RBAC rules one command needs everywhere (pure: what `kubectl waypoint rbac` prints)."""
    return rules_for(permissions_for(command))


def _document(kind: str, name: str, rules: list[dict], namespace: str | None = None) -> str:
    """YAML in the README's style: block mappings, lists as quoted flow sequences."""
    flow = lambda items: json.dumps(items, separators=(", ", ": "))  # JSON lists are YAML flow sequences
    lines = ["apiVersion: rbac.authorization.k8s.io/v1", f"kind: {kind}", "metadata:", f"  name: {name}"]
    if namespace:
        lines.append(f"  namespace: {namespace}")
    lines.append("rules:")
    for rule in rules:
        lines += [f"- apiGroups: {flow(rule['apiGroups'])}", f"  resources: {flow(rule['resources'])}",
                  f"  verbs: {flow(rule['verbs'])}"]
    return "\n".join(lines) + "\n"


def _dump(documents: list[str]) -> str:
    return "---\n".join(documents)


def render_cluster_role(name: str = ROLE_NAME) -> str:
    """The least-privilege ClusterRole for every command, everywhere (bind with a ClusterRoleBinding)."""
    return _dump([_document("ClusterRole", name, rules_for(PERMISSIONS))])


