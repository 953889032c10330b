"""What each command may do to the API server, asked in advance, and the RBAC that grants it.

One declarative list (PERMISSIONS) is the single source of truth: `preflight` asks the API server
about it with SelfSubjectAccessReviews before a command starts, and `render_cluster_role` /
`render_role_variant` turn it into the least-privilege RBAC the README shows, so the documented
role and what the tool checks cannot drift apart. A missing core permission ends the command
(exit 3) with every missing rule named at once; a missing optional one only weakens a check and
becomes a warning. Resources of CRDs the cluster does not serve (Sail, Gateway API) are not asked.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Collection, Iterable, Sequence

from ..errors import ClusterUnavailable, WaypointError
from . import resources as r
from .client import PermissionDenied
from .resources import Resource

if TYPE_CHECKING:
    from .client import Cluster

log = logging.getLogger(__name__)

CLUSTER = "cluster"  # every namespace, or a cluster-scoped resource: a ClusterRole
TARGET = "target"  # the command's namespace (-n); every namespace when it has none (skew -A)
CONTROL_PLANE = "control-plane"  # the namespace istiod runs in
SCOPES = (CLUSTER, TARGET, CONTROL_PLANE)
DEFAULT_CONTROL_PLANE_NAMESPACE = "istio-system"
COMMANDS = ("skew", "verify", "probe")
ROLE_NAME = "kubectl-waypoint"


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
        """The RBAC rule granting it, on one line."""
        return (f'{{apiGroups: ["{self.resource.group}"], resources: ["{self.rbac_resource}"], '
                f'verbs: ["{self.verb}"]}}')

    def describe(self, namespace: str | None) -> str:
        what = self.resource.rbac_name() + (f"/{self.subresource}" if self.subresource else "")
        where = f'in namespace "{namespace}"' if namespace else (
            "in every namespace" if self.resource.namespaced else "(cluster-scoped)")
        return f"{self.verb} {what} {where}"


_VERIFY, _SKEW, _PROBE = ("verify",), ("skew",), ("probe",)
_INVENTORY = ("skew", "verify")

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
    # verify: the namespace under test.
    Permission(_VERIFY, "get", r.NAMESPACES, CLUSTER, True),
    Permission(_VERIFY, "list", r.SERVICES, TARGET, True),
    Permission(_VERIFY, "list", r.DEPLOYMENTS, TARGET, False, "waypoint Deployments cannot be read, so "
               "waypoint-deployment-available is inconclusive", checks=("waypoint-deployment-available",)),
    Permission(_VERIFY, "create", r.PODS, CONTROL_PLANE, False, "istiod's sync status cannot be read, so "
               "sync-status-available is inconclusive (--proxy-status-file avoids it)", subresource="exec",
               checks=("sync-status-available", "waypoint-sync", "waypoint-proxy-version")),
    Permission(_VERIFY, "list", r.HTTPROUTES, TARGET, False, "HTTPRoutes cannot be read, so route-split is "
               "inconclusive", checks=("route-split",)),
    Permission(_VERIFY, "list", r.AUTHORIZATION_POLICIES, TARGET, False, "AuthorizationPolicies cannot be read, "
               "so the authorization checks are inconclusive",
               checks=("authz-allowed", "authz-denied-principal", "authz-denied-method")),
    Permission(_VERIFY, "create", r.PODS, TARGET, False, "no probe can be sent from a pod in the namespace, so "
               "the routing and authorization checks are inconclusive", subresource="exec",
               checks=("route-split", "authz-allowed", "authz-denied-principal", "authz-denied-method")),
    # probe: the client pod and the exec that runs curl in it.
    Permission(_PROBE, "get", r.PODS, TARGET, True),
    Permission(_PROBE, "create", r.PODS, TARGET, True, subresource="exec"),
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
                 control_plane_namespace: str = DEFAULT_CONTROL_PLANE_NAMESPACE) -> list[Missing]:
    """Ask about each permission once (one review per distinct question); CRDs not served are skipped."""
    missing: list[Missing] = []
    answers: dict[tuple, bool] = {}
    for permission in permissions:
        if permission.resource.group and not cluster.has_api(permission.resource):
            continue  # a CRD this cluster does not have: nothing to read, nothing to grant
        where = permission.namespace_for(namespace, control_plane_namespace)
        body = access_review(permission, where)
        key = tuple(sorted(body["spec"]["resourceAttributes"].items()))
        if key not in answers:
            review = cluster.request_json("POST", r.SELF_SUBJECT_ACCESS_REVIEWS.path(), body=body,
                                          resource=r.SELF_SUBJECT_ACCESS_REVIEWS, verb="create", retry=True)
            answers[key] = bool((review.get("status") or {}).get("allowed"))
        if not answers[key]:
            missing.append(Missing(permission, where))
    return missing


def preflight(cluster: "Cluster", command: str, namespace: str | None, *, checks: Collection[str] | None = None,
              control_plane_namespace: str = DEFAULT_CONTROL_PLANE_NAMESPACE) -> list[str]:
    """Check every permission `command` needs before it starts; warnings for the optional ones.

    Raises ClusterUnavailable (exit 3) naming every missing core permission and its RBAC rule.
    `namespace` is the command's namespace, None for skew -A. If the server cannot answer access
    reviews at all, the command goes ahead with a warning (it would fail on the first read anyway).
    """
    try:
        missing = find_missing(cluster, permissions_for(command, checks), namespace, control_plane_namespace)
    except PermissionDenied as exc:  # a hardened cluster that forbids access reviews themselves
        log.debug("access review forbidden: %s", exc.message)
        return ["permissions could not be checked in advance (access reviews are forbidden); continuing"]
    except ClusterUnavailable:
        raise
    except WaypointError as exc:  # an API server without the authorization API
        log.debug("access review failed: %s", exc.message)
        return [f"permissions could not be checked in advance ({exc.message}); continuing"]
    core = [m for m in missing if m.permission.core]
    if core:
        raise ClusterUnavailable(missing_core_message(command, core))
    return [f"cannot {m.permission.describe(m.namespace)} ({m.permission.degrades}); grant it with the rule "
            f"{m.permission.rule()}" for m in missing]


def missing_core_message(command: str, missing: Sequence[Missing]) -> str:
    listed = "; ".join(f"{m.permission.describe(m.namespace)} (rule {m.permission.rule()})" for m in missing)
    return (f"kubectl waypoint {command} lacks {len(missing)} permission(s) it needs: {listed}; "
            f"ask your cluster admin to bind the {ROLE_NAME} ClusterRole from the README (RBAC section)")


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


def render_role_variant(namespace: str, control_plane_namespace: str = DEFAULT_CONTROL_PLANE_NAMESPACE,
                        name: str = ROLE_NAME) -> str:
    """For one namespace: cluster-wide reads in a ClusterRole, the rest (exec included) as Roles.

    Bind the ClusterRole with a ClusterRoleBinding and each Role with a RoleBinding in its
    namespace; then verify, probe and skew -n work for `namespace` without exec anywhere else.
    """
    by_scope = {scope: [p for p in PERMISSIONS if p.scope == scope or (scope == CLUSTER and not p.resource.namespaced)]
                for scope in SCOPES}
    by_scope[TARGET] = [p for p in by_scope[TARGET] if p.resource.namespaced]
    by_scope[CONTROL_PLANE] = [p for p in by_scope[CONTROL_PLANE] if p.resource.namespaced]
    return _dump([
        _document("ClusterRole", f"{name}-cluster-reads", rules_for(by_scope[CLUSTER])),
        _document("Role", name, rules_for(by_scope[TARGET]), namespace),
        _document("Role", f"{name}-istiod", rules_for(by_scope[CONTROL_PLANE]), control_plane_namespace),
    ])
