"""Who may do what: deny rules for permission tests, answered with kube-apiserver's messages.

Everything is allowed unless a rule denies it, like a cluster-admin with carve-outs. A rule for
one namespace also denies the same request at the cluster scope, since listing across all
namespaces needs the permission in each of them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

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


@dataclass(frozen=True)
class DenyRule:
    verb: str
    resource: str  # "pods", "pods/exec" or "*"
    namespace: str | None
    group: str

    def matches(self, attrs: Attributes) -> bool:
        return (self.verb in ("*", attrs.verb)
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

    def deny(self, verb: str, resource: str, namespace: str | None = None, group: str = "") -> None:
        with self._lock:
            self._rules.append(DenyRule(verb, resource, namespace, group))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def allows(self, attrs: Attributes) -> bool:
        with self._lock:
            return not any(rule.matches(attrs) for rule in self._rules)

    def review(self, spec: dict) -> dict:
        """The `status` of a SelfSubjectAccessReview for `spec`."""
        attributes = spec.get("resourceAttributes")
        if not attributes:
            return {"allowed": True}  # non-resource paths are never denied here
        attrs = Attributes(verb=attributes.get("verb", ""), group=attributes.get("group", ""),
                           resource=attributes.get("resource", ""),
                           subresource=attributes.get("subresource", ""),
                           namespace=attributes.get("namespace", ""), name=attributes.get("name", ""))
        return {"allowed": self.allows(attrs)}
