"""The API groups and resources the simulated cluster serves, and their discovery documents.

Optional groups (Gateway API, Istio security, Sail operator) exist only when a scenario installs
them, the way a CRD does: absent from discovery and answering `404 page not found` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

KUBERNETES_VERSION = "v1.32.4"

READ_WRITE = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

GATEWAY_API = "gateway.networking.k8s.io"
ISTIO_SECURITY = "security.istio.io"
SAIL = "sailoperator.io"
OPTIONAL_GROUPS = (GATEWAY_API, ISTIO_SECURITY, SAIL)
# Sail up to 1.27 served ZTunnel only as v1alpha1 (api/v1alpha1/ztunnel_types.go); installing this with
# sailoperator.io makes the cluster one of those.
SAIL_ZTUNNEL_V1ALPHA1 = "sailoperator.io/v1alpha1"
INSTALL_OPTIONS = OPTIONAL_GROUPS + (SAIL_ZTUNNEL_V1ALPHA1,)


@dataclass(frozen=True)
class Resource:
    """One served resource: what discovery says about it and how its objects are stored."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = READ_WRITE
    categories: tuple[str, ...] = ()
    crd: bool = False
    stored: bool = True  # False for virtual resources such as selfsubjectaccessreviews
    served_with: str = ""  # served only when this install option is set
    hidden_with: str = ""  # not served when this install option is set

    def served(self, installed: frozenset[str]) -> bool:
        if self.group in OPTIONAL_GROUPS and self.group not in installed:
            return False
        return (not self.served_with or self.served_with in installed) and self.hidden_with not in installed

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """`pods`, `deployments.apps`: how kube-apiserver names the resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery_entry(self) -> dict:
        entry = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        return entry


@dataclass(frozen=True)
class Subresource:
    parent: str
    name: str
    kind: str
    verbs: tuple[str, ...]

    def discovery_entry(self, namespaced: bool) -> dict:
        return {"name": f"{self.parent}/{self.name}", "singularName": "", "namespaced": namespaced,
                "kind": self.kind, "verbs": list(self.verbs)}


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",),
             ("create", "delete", "get", "list", "patch", "update", "watch")),
    Resource("", "v1", "nodes", "Node", False, ("no",)),
    Resource("", "v1", "pods", "Pod", True, ("po",), categories=("all",)),
    Resource("", "v1", "services", "Service", True, ("svc",),
             ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"), ("all",)),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), categories=("all",)),
    Resource("apps", "v1", "deployments", "Deployment", True, ("deploy",), categories=("all",)),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), categories=("all",)),
    Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
             "MutatingWebhookConfiguration", False, categories=("api-extensions",)),
    Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
             ("crd", "crds"), categories=("api-extensions",)),
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
             verbs=("create",), stored=False),
    Resource(GATEWAY_API, "v1", "gatewayclasses", "GatewayClass", False, ("gc",),
             categories=("gateway-api",), crd=True),
    Resource(GATEWAY_API, "v1", "gateways", "Gateway", True, ("gtw",), categories=("gateway-api",), crd=True),
    Resource(GATEWAY_API, "v1", "httproutes", "HTTPRoute", True, categories=("gateway-api",), crd=True),
    Resource(ISTIO_SECURITY, "v1", "authorizationpolicies", "AuthorizationPolicy", True, ("ap",),
             categories=("istio-io", "security-istio-io"), crd=True),
    Resource(SAIL, "v1", "istios", "Istio", False, categories=("istio-io",), crd=True),
    Resource(SAIL, "v1", "istiorevisions", "IstioRevision", False, ("istiorev",), ("istio-io",), crd=True),
    Resource(SAIL, "v1", "istiorevisiontags", "IstioRevisionTag", False, categories=("istio-io",), crd=True),
    Resource(SAIL, "v1", "istiocnis", "IstioCNI", False, categories=("istio-io",), crd=True),
    Resource(SAIL, "v1", "ztunnels", "ZTunnel", False, categories=("istio-io",), crd=True,
             hidden_with=SAIL_ZTUNNEL_V1ALPHA1),
    Resource(SAIL, "v1alpha1", "ztunnels", "ZTunnel", False, categories=("istio-io",), crd=True,
             served_with=SAIL_ZTUNNEL_V1ALPHA1),
)

SUBRESOURCES: tuple[Subresource, ...] = (Subresource("pods", "exec", "PodExecOptions", ("create", "get")),)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}
_BY_NAME: dict[str, Resource] = {}
for _r in RESOURCES:
    _BY_NAME[_r.plural] = _r
    _BY_NAME[_r.qualified] = _r


def resource_for(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, version, plural))


def resource_for_kind(api_version: str, kind: str) -> Resource | None:
    return _BY_KIND.get((api_version, kind))


def resource_named(name: str) -> Resource:
    """`pods`, `deployments` or `deployments.apps` -> the resource; KeyError when not served."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"the simulated cluster serves no resource named {name!r}") from None


def group_versions(installed: frozenset[str]) -> dict[str, list[str]]:
    """Served group -> versions (core group as ""), optional groups only when installed."""
    served: dict[str, list[str]] = {}
    for r in RESOURCES:
        if not r.served(installed):
            continue
        versions = served.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return served


def api_versions_document(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_document(name: str, versions: list[str]) -> dict:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list_document(installed: frozenset[str]) -> dict:
    groups = [_group_document(g, v) for g, v in group_versions(installed).items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group_document(group: str, installed: frozenset[str]) -> dict | None:
    versions = group_versions(installed).get(group)
    if not group or versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_document(group, versions)}


def api_resource_list_document(group: str, version: str, installed: frozenset[str]) -> dict | None:
    if version not in group_versions(installed).get(group, []):
        return None
    entries = []
    for r in RESOURCES:
        if r.group == group and r.version == version and r.served(installed):
            entries.append(r.discovery_entry())
            entries.extend(s.discovery_entry(r.namespaced) for s in SUBRESOURCES if s.parent == r.plural)
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}


def version_document(git_version: str = KUBERNETES_VERSION) -> dict:
    major, minor = git_version.lstrip("v").split(".")[:2]
    return {"major": major, "minor": minor, "gitVersion": git_version,
            "gitCommit": "b9ed6a1b0d1c7f8b58ab8d1a1f8b4b1b1e5e2a5c", "gitTreeState": "clean",
            "buildDate": "2025-04-22T16:03:19Z", "goVersion": "go1.23.6", "compiler": "gc",
            "platform": "linux/amd64"}


GATEWAY_API_BUNDLE = "v1.4.0"  # the Gateway API release Istio 1.28 implements


def crd_objects(installed: frozenset[str], present: set[str]) -> list[dict]:
    """The CustomResourceDefinitions a cluster with these optional groups holds.

    Gateway API CRDs carry the `bundle-version` and `channel` annotations its release bundles
    stamp; a scenario that lists a CRD itself (by name, in `present`) keeps its own.
    """
    objects = []
    for r in RESOURCES:
        name = f"{r.plural}.{r.group}"
        if not r.crd or r.group not in installed or name in present:
            continue
        annotations = ({"gateway.networking.k8s.io/bundle-version": GATEWAY_API_BUNDLE,
                        "gateway.networking.k8s.io/channel": "standard"} if r.group == GATEWAY_API else {})
        objects.append({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"group": r.group, "scope": "Namespaced" if r.namespaced else "Cluster",
                     "names": {"plural": r.plural, "kind": r.kind, "singular": r.singular},
                     "versions": [{"name": r.version, "served": True, "storage": True}]},
        })
    return objects
