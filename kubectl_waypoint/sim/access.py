"""Who may do what: deny rules for permission tests, answered with kube-apiserver's messages.

Everything is allowed unless a rule denies it, like a cluster-admin with carve-outs. A rule for
one namespace also denies the same request at the cluster scope, since listing across all
namespaces needs the permission in each of them.

An exec is authorized as kube-apiserver does it: its verb comes from the HTTP method (`get` for a
WebSocket upgrade, `create` for SPDY's POST), and from Kubernetes 1.35 a WebSocket upgrade of
pods/exec, attach or portforward is also checked as `create` (feature
AuthorizePodWebsocketUpgradeCreatePermission, beta and on by default; KEP-4006).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace

DEFAULT_USER = "system:serviceaccount:default:tester"
ANONYMOUS_USER = "system:anonymous"


@dataclass(frozen=True)
class Attributes:
    """A request as the authorizer sees it."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def resource_path(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


_UPGRADE_SUBRESOURCES = ("exec", "attach", "portforward")
CREATE_ON_UPGRADE_FROM = (1, 35)


def minor_version(git_version: str) -> tuple[int, int]:
    """(major, minor) of a Kubernetes gitVersion such as v1.35.0."""
    found = re.match(r"v?(\d+)\.(\d+)", git_version)
    if not found:
        raise ValueError(f"not a Kubernetes version: {git_version!r}")
    return int(found[1]), int(found[2])


def authorizations(attrs: Attributes, kubernetes_version: str, websocket: bool) -> list[Attributes]:
    """Every check the request must pass, in the API server's order (the first denied one answers)."""
    checks = [attrs]
    if websocket and attrs.verb == "get" and attrs.resource == "pods" and attrs.subresource in _UPGRADE_SUBRESOURCES \
            and minor_version(kubernetes_version) >= CREATE_ON_UPGRADE_FROM:
        checks.append(replace(attrs, verb="create"))
    return checks


@dataclass(frozen=True)
class DenyRule:
    verb: str
    resource: str  # "pods", "pods/exec" or "*"
    namespace: str | None
    group: str
    user: str | None = None  # None: everyone; else only this (possibly impersonated) user

    def matches(self, attrs: Attributes, user: str | None = None) -> bool:
        return (self.user in (None, user)
                and self.verb in ("*", attrs.verb)
                and self.resource in ("*", attrs.resource_path)
                and self.group in ("*", attrs.group)
                and (self.namespace is None or attrs.namespace in ("", self.namespace)))


def forbidden_reason(user: str, attrs: Attributes) -> str:
    """The authorizer's sentence, as in kube-apiserver's forbiddenMessage."""
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (f'User "{user}" cannot {attrs.verb} resource "{attrs.resource_path}" '
            f'in API group "{attrs.group}" {where}')


class AccessRules:
    """The deny list; thread-safe because tests change it while requests are served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[DenyRule] = []

    def deny(self, verb: str, resource: str, namespace: str | None = None, group: str = "",
             user: str | None = None) -> None:
        with self._lock:
            self._rules.append(DenyRule(verb, resource, namespace, group, user))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def allows(self, attrs: Attributes, user: str | None = None) -> bool:
        """Whether `user` (the impersonated one, when a request impersonates) may do this."""
        with self._lock:
            return not any(rule.matches(attrs, user) for rule in self._rules)

    def first_denied(self, checks: list[Attributes], user: str | None = None) -> Attributes | None:
        return next((attrs for attrs in checks if not self.allows(attrs, user)), None)

    def review(self, spec: dict, user: str | None = None) -> dict:
        """The `status` of a SelfSubjectAccessReview for `spec`, asked by `user`."""
        attributes = spec.get("resourceAttributes")
        if not attributes:
            return {"allowed": True}  # non-resource paths are never denied here
        attrs = Attributes(verb=attributes.get("verb", ""), group=attributes.get("group", ""),
                           resource=attributes.get("resource", ""),
                           subresource=attributes.get("subresource", ""),
                           namespace=attributes.get("namespace", ""), name=attributes.get("name", ""))
        return {"allowed": self.allows(attrs, user)}
