"""The API resources the tool reads, with the paths a real API server serves them at."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """One API resource: where it lives and how RBAC names it."""

    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool = True

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def base(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """Collection or object path; namespace None on a namespaced resource lists all namespaces."""
        parts = [self.base]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        return "/".join(parts)

    def rbac_name(self) -> str:
        """How `kubectl auth can-i` and RBAC rules spell it: plural.group."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
PODS = Resource("", "v1", "pods")
SERVICES = Resource("", "v1", "services")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
DAEMONSETS = Resource("apps", "v1", "daemonsets")
MUTATING_WEBHOOKS = Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", namespaced=False)
GATEWAY_CLASSES = Resource("gateway.networking.k8s.io", "v1", "gatewayclasses", namespaced=False)
GATEWAYS = Resource("gateway.networking.k8s.io", "v1", "gateways")
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
AUTHORIZATION_POLICIES = Resource("security.istio.io", "v1", "authorizationpolicies")
SAIL_ISTIOS = Resource("sailoperator.io", "v1", "istios", namespaced=False)
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
SAIL_REVISIONS = Resource("sailoperator.io", "v1", "istiorevisions", namespaced=False)
SAIL_CNIS = Resource("sailoperator.io", "v1", "istiocnis", namespaced=False)
SAIL_ZTUNNELS = Resource("sailoperator.io", "v1", "ztunnels", namespaced=False)
# Sail up to 1.27 served ZTunnel only as v1alpha1 (sail-operator api/v1alpha1/ztunnel_types.go).
SAIL_ZTUNNELS_V1ALPHA1 = Resource("sailoperator.io", "v1alpha1", "ztunnels", namespaced=False)
SELF_SUBJECT_ACCESS_REVIEWS = Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", namespaced=False)
