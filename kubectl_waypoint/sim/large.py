"""A big cluster built in code, for benchmarks and scale tests: same shorthand, many nodes."""

from __future__ import annotations

import random

from .resources import GATEWAY_API, ISTIO_SECURITY
from .scenario import Scenario

HUB = "registry.alauda.cn:60080/asm"
TAG = "1.28.6-asm-r3"
APP_PODS_PER_NODE = 5
_APPS = ("frontend", "cart", "checkout", "catalog", "payments", "search", "shipping", "accounts")


def generate_large_scenario(nodes: int, waypoint_namespaces: int, seed: int = 0) -> Scenario:
    """istiod, ztunnel and istio-cni on every node, a waypoint per namespace, and unrelated apps.

    Application pods (APP_PODS_PER_NODE per node) share the cluster so that label selectors,
    not luck, decide what a query returns. `seed` varies app names and placement.
    """
    rng = random.Random(seed)
    node_names = [f"node-{i:05d}" for i in range(nodes)]
    namespaces = [f"mesh-{i:04d}" for i in range(waypoint_namespaces)] or ["apps"]
    workloads: list[dict] = [
        {"kind": "Deployment", "name": "istiod", "namespace": "istio-system",
         "labels": {"app": "istiod", "istio.io/rev": "default"}, "serviceAccount": "istiod",
         "containers": [{"name": "discovery", "image": f"{HUB}/pilot:{TAG}"}]},
        {"kind": "DaemonSet", "name": "ztunnel", "namespace": "istio-system", "labels": {"app": "ztunnel"},
         "serviceAccount": "ztunnel", "containers": [{"name": "istio-proxy", "image": f"{HUB}/ztunnel:{TAG}",
                                                      "env": {"XDS_ADDRESS": "istiod.istio-system.svc:15012",
                                                              "CA_ADDRESS": "istiod.istio-system.svc:15012"}}]},
        {"kind": "DaemonSet", "name": "istio-cni-node", "namespace": "istio-system",
         "labels": {"k8s-app": "istio-cni-node"}, "serviceAccount": "istio-cni",
         "containers": [{"name": "install-cni", "image": f"{HUB}/install-cni:{TAG}"}]},
    ]
    workloads += [{"kind": "Waypoint", "name": "waypoint", "namespace": ns, "image": f"{HUB}/proxyv2:{TAG}",
                   "revision": "default"} for ns in namespaces if waypoint_namespaces]
    apps_per_namespace = 4
    deployments = len(namespaces) * apps_per_namespace
    total_pods = nodes * APP_PODS_PER_NODE
    for index in range(deployments):
        namespace = namespaces[index % len(namespaces)]
        app = f"{rng.choice(_APPS)}-{index // len(namespaces)}"
        replicas = total_pods // deployments + (1 if index < total_pods % deployments else 0)
        if replicas:
            workloads.append({"kind": "Deployment", "name": app, "namespace": namespace,
                              "labels": {"app": app, "version": "v1"}, "serviceAccount": app, "replicas": replicas,
                              "containers": [{"name": app, "image": f"example.com/shop/{app}:{rng.randint(1, 9)}.0"}]})
    doc = {
        "name": f"large-{nodes}-nodes",
        "description": f"{nodes} nodes, {waypoint_namespaces} waypoint namespaces, all on {TAG}",
        "installed": [GATEWAY_API, ISTIO_SECURITY],
        "nodes": node_names,
        "namespaces": {ns: {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint"}
                       for ns in namespaces if waypoint_namespaces},
        "workloads": workloads,
        # istiod creates the waypoint class at start-up (pilot/pkg/config/kube/gateway/gatewayclass.go).
        "objects": [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                     "metadata": {"name": "istio-waypoint"}, "spec": {"controllerName": "istio.io/mesh-controller"}}],
    }
    return Scenario.from_dict(doc)


APP_IMAGE = "docker.io/istio/examples-bookinfo-ratings-v1:1.20.3"  # has curl: any app pod can be a client


def generate_routes_scenario(waypoints: int, routes: int) -> Scenario:
    """Bookinfo plus `waypoints` extra waypoints and `routes` weighted routes, each on its own Service."""
    workloads, services, objects = [], [], []
    for j in range(1, waypoints):
        workloads.append({"kind": "Waypoint", "name": f"wp-{j}", "namespace": "bookinfo",
                          "image": f"{HUB}/proxyv2:1.28.6-asm-r3", "revision": "default"})
    for i in range(1, routes):
        app = f"app-{i}"
        for version in ("v1", "v2"):
            workloads.append({"name": f"{app}-{version}", "namespace": "bookinfo",
                              "labels": {"app": app, "version": version}, "serviceAccount": f"bookinfo-{app}",
                              "containers": [{"name": app, "image": APP_IMAGE, "ports": [9080]}]})
            services.append({"name": f"{app}-{version}", "namespace": "bookinfo",
                             "selector": {"app": app, "version": version}, "ports": [9080]})
        waypoint = "waypoint" if waypoints == 1 or i % waypoints == 0 else f"wp-{i % waypoints}"
        services.append({"name": app, "namespace": "bookinfo", "selector": {"app": app}, "ports": [9080],
                         "labels": {"istio.io/use-waypoint": waypoint}})
        objects.append({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": app, "namespace": "bookinfo"},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": app, "port": 9080}],
                     "rules": [{"backendRefs": [{"name": f"{app}-v1", "port": 9080, "weight": 70},
                                                {"name": f"{app}-v2", "port": 9080, "weight": 30}]}]},
        })
    return Scenario.from_dict({"name": f"bench-{waypoints}w-{routes}r", "description": f"Bookinfo with {waypoints} waypoints and {routes} weighted routes",
                               "base": "bookinfo", "workloads": workloads, "services": services,
                               "objects": objects})


def generate_fleet_scenario(namespaces: int, *, too_old: str | None = None, no_client: str | None = None) -> Scenario:
    """Bookinfo plus `namespaces` team namespaces (team-00, ...), each with its own waypoint, a 70/30
    route and a client pod with curl; `too_old` runs its waypoint on 1.26, `no_client` has no client."""
    workloads, services, objects, labels = [], [], [], {}
    for i in range(namespaces):
        ns = f"team-{i:02d}"
        labels[ns] = {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint"}
        tag = "1.26.4-asm-r1" if ns == too_old else "1.28.6-asm-r3"
        workloads.append({"kind": "Waypoint", "name": "waypoint", "namespace": ns, "image": f"{HUB}/proxyv2:{tag}",
                          "revision": "default"})
        for version in ("v1", "v2"):
            workloads.append({"name": f"app-{version}", "namespace": ns, "labels": {"app": "app", "version": version},
                              "serviceAccount": "app", "containers": [{"name": "app", "image": APP_IMAGE, "ports": [9080]}]})
            services.append({"name": f"app-{version}", "namespace": ns, "selector": {"app": "app", "version": version},
                             "ports": [9080]})
        services.append({"name": "app", "namespace": ns, "selector": {"app": "app"}, "ports": [9080]})
        if ns != no_client:
            workloads.append({"name": "client", "namespace": ns, "labels": {"app": "client"}, "serviceAccount": "client",
                              "containers": [{"name": "curl", "image": "curlimages/curl:8.16.0",
                                              "command": ["/bin/sleep", "infinity"]}]})
        objects.append({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "app", "port": 9080}],
                     "rules": [{"backendRefs": [{"name": "app-v1", "port": 9080, "weight": 70},
                                                {"name": "app-v2", "port": 9080, "weight": 30}]}]},
        })
    return Scenario.from_dict({"name": f"fleet-{namespaces}", "description": f"Bookinfo and {namespaces} team namespaces",
                               "base": "bookinfo", "namespaces": labels, "workloads": workloads, "services": services,
                               "objects": objects})
