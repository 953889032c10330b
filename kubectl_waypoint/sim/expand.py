"""Turn a scenario's shorthand into the objects a real cluster would hold.

`workloads:` entries become a Deployment (with ReplicaSets and Pods) or a DaemonSet (a Pod per
node), or for `kind: Waypoint` the Gateway, Service and Deployment istiod would create.
`services:`, `nodes:` and `namespaces:` expand likewise. Names, IPs, hashes and uids are derived
from the input only, so the same scenario always yields the same cluster (golden files rely on it).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from functools import lru_cache

from .resources import KUBERNETES_VERSION
from .store import UID_NAMESPACE, gc_paused

DEFAULT_CREATED = "2025-11-03T08:00:00Z"
DEFAULT_STARTED = "2025-11-24T09:30:00Z"
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")

_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for generated names
_SAFE_TABLE = bytes(ord(_SAFE[b % len(_SAFE)]) for b in range(256))
_WAYPOINT_CLASS = "istio-waypoint"
_MESH_CONTROLLER = "istio.io-mesh-controller"


def stable_suffix(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).digest()[:length].translate(_SAFE_TABLE).decode()


def _ipv4(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


@lru_cache(maxsize=4096)
def _normalised_image(image: str) -> str:
    """How containerd reports an image: registry and tag made explicit."""
    name = image.split("@", 1)[0]
    first, _, rest = name.partition("/")
    if not rest:
        image = "docker.io/library/" + image
    elif "." not in first and ":" not in first and first != "localhost":
        image = "docker.io/" + image
    if "@" not in image and ":" not in image.rsplit("/", 1)[-1]:
        image += ":latest"
    return image


@lru_cache(maxsize=4096)
def _image_id(image: str) -> str:
    normalised = _normalised_image(image)
    if "@" in normalised:
        return normalised
    repository = normalised.rsplit(":", 1)[0]
    return f"{repository}@sha256:{hashlib.sha256(normalised.encode()).hexdigest()}"


@dataclass
class _Cluster:
    """Expansion state: nodes and the counters that hand out addresses."""

    nodes: list[str]
    created: str
    started: str
    objects: list[dict] = field(default_factory=list)
    service_accounts: set[tuple[str, str]] = field(default_factory=set)
    namespaces_used: set[str] = field(default_factory=set)
    _pod_ips: dict[int, int] = field(default_factory=dict)
    _next_service_ip: int = (10 << 24) | (96 << 16) | 10

    def pod_ip(self, node_index: int) -> str:
        count = self._pod_ips.get(node_index, 0)
        self._pod_ips[node_index] = count + 1
        return _ipv4((10 << 24) | (128 << 16) | (node_index << 8) | (count % 250 + 2))

    def host_ip(self, node_index: int) -> str:
        return _ipv4((172 << 24) | (18 << 16) | (node_index + 2))

    def service_ip(self) -> str:
        self._next_service_ip += 1
        return _ipv4(self._next_service_ip)

    def add(self, obj: dict) -> dict:
        self.objects.append(obj)
        namespace = obj["metadata"].get("namespace")
        if namespace:
            self.namespaces_used.add(namespace)
        return obj


def _meta(name: str, namespace: str | None, created: str, labels: dict | None = None,
          annotations: dict | None = None, owner: dict | None = None, generation: int | None = None) -> dict:
    meta: dict = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if generation is not None:
        meta["generation"] = generation
    meta["creationTimestamp"] = created
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    if owner:
        meta["ownerReferences"] = [owner]
    return meta


def _owner(api_version: str, kind: str, name: str, namespace: str) -> dict:
    """A controller reference; the uid is the one the store will derive for the owner."""
    plural = {"Deployment": "deployments.apps", "ReplicaSet": "replicasets.apps", "DaemonSet": "daemonsets.apps",
              "Gateway": "gateways.gateway.networking.k8s.io"}[kind]
    uid = str(uuid.uuid5(UID_NAMESPACE, f"{plural}/{namespace}/{name}"))
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True,
            "blockOwnerDeletion": True}


# ---------------------------------------------------------------- nodes, namespaces, services

def _node(name: str, index: int, cluster: _Cluster, kubernetes_version: str) -> dict:
    labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    resources = {"cpu": "8", "ephemeral-storage": "102350Mi", "memory": "32863320Ki", "pods": "110"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": _meta(name, None, cluster.created, labels,
                          {"node.alpha.kubernetes.io/ttl": "0",
                           "volumes.kubernetes.io/controller-managed-attach-detach": "true"}),
        "spec": {"podCIDR": f"10.128.{index}.0/24" if index < 256 else f"10.{128 + index // 256}.{index % 256}.0/24",
                 "providerID": f"kind://docker/sim/{name}"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": cluster.host_ip(index)},
                          {"type": "Hostname", "address": name}],
            "allocatable": resources, "capacity": resources,
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": cluster.started,
                 "lastTransitionTime": cluster.created, "reason": "KubeletHasSufficientMemory",
                 "message": "kubelet has sufficient memory available"},
                {"type": "DiskPressure", "status": "False", "lastHeartbeatTime": cluster.started,
                 "lastTransitionTime": cluster.created, "reason": "KubeletHasNoDiskPressure",
                 "message": "kubelet has no disk pressure"},
                {"type": "PIDPressure", "status": "False", "lastHeartbeatTime": cluster.started,
                 "lastTransitionTime": cluster.created, "reason": "KubeletHasSufficientPID",
                 "message": "kubelet has sufficient PID available"},
                {"type": "Ready", "status": "True", "lastHeartbeatTime": cluster.started,
                 "lastTransitionTime": cluster.created, "reason": "KubeletReady",
                 "message": "kubelet is posting ready status"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"architecture": "amd64", "bootID": stable_suffix("boot" + name, 8),
                         "containerRuntimeVersion": "containerd://1.7.24", "kernelVersion": "6.8.0-59-generic",
                         "kubeProxyVersion": kubernetes_version, "kubeletVersion": kubernetes_version,
                         "machineID": hashlib.md5(name.encode()).hexdigest(), "operatingSystem": "linux",
                         "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "systemUUID": hashlib.md5(("uuid" + name).encode()).hexdigest()}},
    }


def _namespace(name: str, labels: dict | None, created: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": _meta(name, None, created, {"kubernetes.io/metadata.name": name, **(labels or {})}),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def _service_port(port, single: bool) -> dict:
    if isinstance(port, int):
        port = {"port": port, "name": "http" if single else f"tcp-{port}"}
    out = {"name": port.get("name", f"tcp-{port['port']}"), "port": port["port"],
           "protocol": port.get("protocol", "TCP"), "targetPort": port.get("targetPort", port["port"])}
    if "appProtocol" in port:
        out["appProtocol"] = port["appProtocol"]
    return out


def _service(entry: dict, cluster: _Cluster) -> dict:
    ip = entry.get("clusterIP") or cluster.service_ip()
    ports = entry.get("ports") or []
    spec = {"clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack", "ports": [_service_port(p, len(ports) == 1) for p in ports]}
    if entry.get("selector"):
        spec["selector"] = dict(entry["selector"])
    spec["sessionAffinity"] = "None"
    spec["type"] = entry.get("type", "ClusterIP")
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _meta(entry["name"], entry["namespace"], cluster.created, entry.get("labels"),
                              entry.get("annotations"), entry.get("owner")),
            "spec": spec, "status": {"loadBalancer": {}}}


# ---------------------------------------------------------------- pods and their controllers

def _container_spec(container: dict) -> dict:
    spec = {"name": container["name"], "image": container["image"]}
    if container.get("command"):
        spec["command"] = list(container["command"])
    if container.get("args"):
        spec["args"] = list(container["args"])
    if container.get("env"):
        spec["env"] = [{"name": k, "value": str(v)} if not isinstance(v, dict) else {"name": k, **v}
                       for k, v in container["env"].items()]
    if container.get("ports"):
        spec["ports"] = [{"containerPort": p, "protocol": "TCP"} if isinstance(p, int)
                         else {"containerPort": p["port"], "name": p["name"], "protocol": p.get("protocol", "TCP")}
                         for p in container["ports"]]
    spec.update({"resources": container.get("resources", {}), "terminationMessagePath": "/dev/termination-log",
                 "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"})
    return spec


def _template_hash(namespace: str, name: str, containers: list[dict], labels: dict) -> str:
    return _hash_of(namespace, name, tuple((c["name"], c["image"]) for c in containers),
                    json.dumps(labels, sort_keys=True))


@lru_cache(maxsize=4096)
def _hash_of(namespace: str, name: str, images: tuple, labels: str) -> str:
    return stable_suffix(json.dumps([namespace, name, images, labels]), 10)


@dataclass
class _PodPlan:
    """One pod to create: where, from which template, and in what state."""

    node_index: int
    containers: list[dict]
    phase: str = "Running"
    ready: bool = True
    restarts: int = 0


def _plans(entry: dict, cluster: _Cluster, daemon: bool) -> list[_PodPlan]:
    node_count = len(cluster.nodes)
    if daemon:
        wanted = entry.get("nodes")
        if wanted:
            index_of = {n: i for i, n in enumerate(cluster.nodes)}
            missing = [n for n in wanted if n not in index_of]
            if missing:
                raise ValueError(f"workload {entry['namespace']}/{entry['name']}: unknown nodes {missing}")
            plans = [_PodPlan(index_of[n], entry["containers"]) for n in wanted]
        else:
            plans = [_PodPlan(i, entry["containers"]) for i in range(node_count)]
    else:
        offset = int(hashlib.sha256(entry["name"].encode()).hexdigest(), 16) % max(node_count, 1)
        plans = [_PodPlan((offset + i) % node_count if node_count else -1, entry["containers"])
                 for i in range(int(entry.get("replicas", 1)))]
    for override in entry.get("podOverrides") or []:
        if "node" in override:
            matches = [p for p in plans if p.node_index >= 0 and cluster.nodes[p.node_index] == override["node"]]
        else:
            matches = [plans[int(override.get("index", 0))]]
        for plan in matches:
            images = override.get("containers") or {}
            plan.containers = [{**c, "image": images.get(c["name"], c["image"])} for c in plan.containers]
            plan.phase = override.get("phase", plan.phase)
            plan.ready = bool(override.get("ready", plan.phase == "Running"))
            plan.restarts = int(override.get("restartCount", plan.restarts))
    return plans


def _pod_status(plan: _PodPlan, pod_name: str, cluster: _Cluster) -> dict:
    started = cluster.started
    running = plan.phase == "Running"
    ready = "True" if running and plan.ready else "False"
    conditions = [
        {"type": "PodReadyToStartContainers", "status": "True" if running else "False", "lastProbeTime": None,
         "lastTransitionTime": started},
        {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": started},
        {"type": "Ready", "status": ready, "lastProbeTime": None, "lastTransitionTime": started},
        {"type": "ContainersReady", "status": ready, "lastProbeTime": None, "lastTransitionTime": started},
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": started},
    ]
    if ready == "False":
        names = " ".join(c["name"] for c in plan.containers)
        for condition in conditions[2:4]:
            condition["reason"] = "ContainersNotReady"
            condition["message"] = f"containers with unready status: [{names}]"
    statuses = []
    for container in plan.containers:
        status = {"name": container["name"]}
        if running:
            status["state"] = {"running": {"startedAt": started}}
        elif plan.phase == "Pending":
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        else:
            status["state"] = {"terminated": {"exitCode": 0 if plan.phase == "Succeeded" else 1,
                                              "reason": "Completed" if plan.phase == "Succeeded" else "Error",
                                              "startedAt": started, "finishedAt": started}}
        status.update({"lastState": {}, "ready": running and plan.ready, "restartCount": plan.restarts,
                       "image": _normalised_image(container["image"]), "imageID": "" if plan.phase == "Pending"
                       else _image_id(container["image"])})
        if plan.phase != "Pending":
            runtime_id = hashlib.sha256((pod_name + container["name"]).encode()).hexdigest()
            status["containerID"] = f"containerd://{runtime_id}"
        status["started"] = running
        statuses.append(status)
    out: dict = {"phase": plan.phase, "conditions": conditions}
    if plan.node_index >= 0:
        host = cluster.host_ip(plan.node_index)
        out["hostIP"] = host
        out["hostIPs"] = [{"ip": host}]
        if plan.phase != "Pending":
            ip = cluster.pod_ip(plan.node_index)
            out["podIP"] = ip
            out["podIPs"] = [{"ip": ip}]
    out["startTime"] = started
    out["containerStatuses"] = statuses
    out["qosClass"] = "BestEffort"
    return out


def _pod(name: str, namespace: str, labels: dict, annotations: dict | None, owner: dict, plan: _PodPlan,
         service_account: str, cluster: _Cluster, generate_name: str) -> dict:
    meta = _meta(name, namespace, cluster.started, labels, annotations, owner)
    meta["generateName"] = generate_name
    spec = {"containers": [_container_spec(c) for c in plan.containers], "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": service_account, "serviceAccount": service_account}
    if plan.node_index >= 0:
        spec["nodeName"] = cluster.nodes[plan.node_index]
    spec.update({"securityContext": {}, "schedulerName": "default-scheduler", "priority": 0,
                 "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority"})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": _pod_status(plan, name, cluster)}


def _unique_name(prefix: str, seed: str, taken: set[str]) -> str:
    attempt = 0
    while True:
        name = prefix + stable_suffix(f"{seed}/{attempt}", 5)
        if name not in taken:
            taken.add(name)
            return name
        attempt += 1


def _template(labels: dict, annotations: dict | None, containers: list[dict], service_account: str) -> dict:
    meta: dict = {"creationTimestamp": None, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"metadata": meta,
            "spec": {"containers": [_container_spec(c) for c in containers], "restartPolicy": "Always",
                     "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                     "serviceAccountName": service_account, "serviceAccount": service_account,
                     "securityContext": {}, "schedulerName": "default-scheduler"}}


def _workload_basics(entry: dict, cluster: _Cluster) -> tuple[str, str, dict, dict, dict | None, str]:
    """Name, namespace, labels, selector, annotations and service account of a workload entry."""
    name, namespace = entry["name"], entry["namespace"]
    labels = dict(entry.get("labels") or {"app": name})
    service_account = entry.get("serviceAccount", "default")
    cluster.service_accounts.add((namespace, service_account))
    return name, namespace, labels, dict(entry.get("selector") or labels), entry.get("annotations"), service_account


def _deployment(entry: dict, cluster: _Cluster, owner: dict | None = None) -> None:
    name, namespace, labels, selector, annotations, service_account = _workload_basics(entry, cluster)
    plans = _plans(entry, cluster, daemon=False)
    previous = [[{**c, "image": images.get(c["name"], c["image"])} for c in entry["containers"]]
                for images in entry.get("previous") or []]
    current_hash = _template_hash(namespace, name, entry["containers"], labels)
    # Every template that ever ran gets a ReplicaSet; revision numbers follow history order.
    revisions: dict[str, list[dict]] = {}
    for containers in previous + [entry["containers"]] + [p.containers for p in plans
                                                          if p.containers is not entry["containers"]]:
        revisions.setdefault(_template_hash(namespace, name, containers, labels), containers)
    generation = len(previous) + 1
    revision_of = {h: i + 1 for i, h in enumerate(h for h in revisions if h != current_hash)}
    revision_of[current_hash] = len(revision_of) + 1
    deployment_created = entry.get("created", cluster.created)
    pods_by_hash: dict[str, list[_PodPlan]] = {h: [] for h in revisions}
    for plan in plans:
        unchanged = plan.containers is entry["containers"]
        template_hash = current_hash if unchanged else _template_hash(namespace, name, plan.containers, labels)
        pods_by_hash[template_hash].append(plan)
    taken: set[str] = set()
    replicas = len(plans)
    ready_total = sum(1 for p in plans if p.phase == "Running" and p.ready)
    updated = len(pods_by_hash[current_hash])
    cluster.add({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(name, namespace, deployment_created, entry.get("workloadLabels") or labels,
                          {**(entry.get("workloadAnnotations") or {}),
                           "deployment.kubernetes.io/revision": str(revision_of[current_hash])}, owner, generation),
        "spec": {"replicas": replicas, "selector": {"matchLabels": selector},
                 "template": _template(labels, annotations, entry["containers"], service_account),
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                 "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
        "status": _deployment_status(generation, replicas, updated, ready_total, cluster.started),
    })
    deployment_owner = _owner("apps/v1", "Deployment", name, namespace)
    for template_hash, containers in revisions.items():
        rs_name = f"{name}-{template_hash}"
        rs_labels = {**labels, "pod-template-hash": template_hash}
        members = pods_by_hash[template_hash]
        rs_ready = sum(1 for plan in members if plan.phase == "Running" and plan.ready)
        cluster.add({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": _meta(rs_name, namespace, deployment_created, rs_labels,
                              {"deployment.kubernetes.io/desired-replicas": str(replicas),
                               "deployment.kubernetes.io/max-replicas": str(replicas + max(1, replicas // 4)),
                               "deployment.kubernetes.io/revision": str(revision_of[template_hash])},
                              deployment_owner, 1),
            "spec": {"replicas": len(members),
                     "selector": {"matchLabels": {**selector, "pod-template-hash": template_hash}},
                     "template": _template(rs_labels, annotations, containers, service_account)},
            "status": {"replicas": len(members), "fullyLabeledReplicas": len(members), "readyReplicas": rs_ready,
                       "availableReplicas": rs_ready, "observedGeneration": 1} if members
            else {"replicas": 0, "observedGeneration": 1},
        })
        rs_owner = _owner("apps/v1", "ReplicaSet", rs_name, namespace)
        for plan in members:
            pod_name = _unique_name(f"{rs_name}-", f"{namespace}/{rs_name}/{len(taken)}", taken)
            cluster.add(_pod(pod_name, namespace, rs_labels, annotations, rs_owner, plan, service_account, cluster,
                             f"{rs_name}-"))


def _deployment_status(generation: int, replicas: int, updated: int, ready: int, started: str) -> dict:
    available = "True" if ready >= replicas - replicas // 4 else "False"  # maxUnavailable 25%, rounded down
    complete = updated == replicas and ready == replicas
    status: dict = {"observedGeneration": generation, "replicas": replicas, "updatedReplicas": updated,
                    "readyReplicas": ready, "availableReplicas": ready}
    if ready < replicas:
        status["unavailableReplicas"] = replicas - ready
    if not ready:
        del status["readyReplicas"]
    status["conditions"] = [
        {"type": "Available", "status": available, "lastUpdateTime": started, "lastTransitionTime": started,
         "reason": "MinimumReplicasAvailable" if available == "True" else "MinimumReplicasUnavailable",
         "message": "Deployment has minimum availability." if available == "True"
         else "Deployment does not have minimum availability."},
        {"type": "Progressing", "status": "True", "lastUpdateTime": started, "lastTransitionTime": started,
         "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
         "message": "ReplicaSet has successfully progressed." if complete else "ReplicaSet is progressing."},
    ]
    return status


def _daemonset(entry: dict, cluster: _Cluster) -> None:
    name, namespace, labels, selector, annotations, service_account = _workload_basics(entry, cluster)
    plans = _plans(entry, cluster, daemon=True)
    generation = len(entry.get("previous") or []) + 1
    current_hash = _template_hash(namespace, name, entry["containers"], labels)
    updated = ready = available = 0
    owner = _owner("apps/v1", "DaemonSet", name, namespace)
    taken: set[str] = set()
    pods = []
    for plan in plans:
        unchanged = plan.containers is entry["containers"]
        template_hash = current_hash if unchanged else _template_hash(namespace, name, plan.containers, labels)
        current = template_hash == current_hash
        updated += current
        is_ready = plan.phase == "Running" and plan.ready
        ready += is_ready
        available += is_ready
        pod_labels = {**labels, "controller-revision-hash": template_hash,
                      "pod-template-generation": str(generation if current else generation - 1)}
        pod_name = _unique_name(f"{name}-", f"{namespace}/{name}/{len(taken)}", taken)
        pod = _pod(pod_name, namespace, pod_labels, annotations, owner, plan, service_account, cluster, f"{name}-")
        pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                    "values": [cluster.nodes[plan.node_index]]}]}]}}}
        pods.append(pod)
    desired = len(plans)
    status = {"currentNumberScheduled": desired, "desiredNumberScheduled": desired, "numberAvailable": available,
              "numberMisscheduled": 0, "numberReady": ready, "observedGeneration": generation,
              "updatedNumberScheduled": updated}
    if desired - available:
        status["numberUnavailable"] = desired - available
    cluster.add({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": _meta(name, namespace, entry.get("created", cluster.created), entry.get("workloadLabels") or labels,
                          {**(entry.get("workloadAnnotations") or {}),
                           "deprecated.daemonset.template.generation": str(generation)}, None, generation),
        "spec": {"selector": {"matchLabels": selector},
                 "template": _template(labels, annotations, entry["containers"], service_account),
                 "updateStrategy": {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                 "revisionHistoryLimit": 10},
        "status": status,
    })
    for pod in pods:
        cluster.add(pod)


# Annotations istiod does not copy from a Gateway onto what it creates (waypoint.yaml's `omit`).
_NOT_COPIED = ("kubectl.kubernetes.io/last-applied-configuration", "gateway.istio.io/name-override",
               "gateway.istio.io/service-account", "gateway.istio.io/controller-version")
# The proxy container of each waypoint class, where it is not Envoy's istio-proxy.
_WAYPOINT_CONTAINERS = {"istio-agentgateway-waypoint": "agentgateway"}


def _waypoint(entry: dict, cluster: _Cluster) -> None:
    """What istiod creates for a waypoint Gateway, as manifests/charts/istio-control/istio-discovery/
    files/waypoint.yaml renders it: the Gateway's labels and annotations copied, the gateway-name,
    gateway-class-name and managed labels, and the pods' `istio.io/rev` annotation naming the revision
    that rendered them. The Deployment is named after the Gateway unless `nameOverride` is set."""
    name, namespace = entry["name"], entry["namespace"]
    class_name = entry.get("className", _WAYPOINT_CLASS)
    revision = entry.get("revision")  # the Gateway's istio.io/rev label: a revision or a tag
    gateway_labels = {"istio.io/waypoint-for": entry.get("for", "service"), **(entry.get("gatewayLabels") or {})}
    if revision and revision != "default":
        gateway_labels["istio.io/rev"] = revision
    gateway_annotations = dict(entry.get("gatewayAnnotations") or {})
    deployment_name = entry.get("nameOverride") or name
    if entry.get("nameOverride"):
        gateway_annotations["gateway.istio.io/name-override"] = deployment_name
    copied = {k: v for k, v in gateway_annotations.items() if k not in _NOT_COPIED}
    identity = {"gateway.networking.k8s.io/gateway-name": name, "gateway.networking.k8s.io/gateway-class-name": class_name}
    managed = {**gateway_labels, **identity, "gateway.istio.io/managed": _MESH_CONTROLLER}
    service_ip = cluster.service_ip()
    host = f"{deployment_name}.{namespace}.svc.cluster.local"
    programmed = entry.get("programmed", True)
    created = entry.get("created", cluster.created)
    condition_time = cluster.started
    cluster.add({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": _meta(name, namespace, created, gateway_labels, gateway_annotations or None, None, 1),
        "spec": {"gatewayClassName": class_name,
                 "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE",
                                "allowedRoutes": {"namespaces": {"from": entry.get("allowedFrom", "Same")}}}]},
        "status": {
            "addresses": [{"type": "IPAddress", "value": service_ip}],
            "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Resource accepted",
                 "observedGeneration": 1, "lastTransitionTime": condition_time},
                {"type": "Programmed", "status": "True" if programmed else "False",
                 "reason": "Programmed" if programmed else "Invalid",
                 "message": f"Resource programmed, assigned to service(s) {host}:15008" if programmed
                 else "Deployment waypoint could not be created", "observedGeneration": 1,
                 "lastTransitionTime": condition_time}],
            "listeners": [{"name": "mesh", "attachedRoutes": 0, "supportedKinds": [],
                           "conditions": [
                               {"type": "Accepted", "status": "True", "reason": "Accepted",
                                "message": "No errors found", "observedGeneration": 1,
                                "lastTransitionTime": condition_time},
                               {"type": "Programmed", "status": "True", "reason": "Programmed",
                                "message": "No errors found", "observedGeneration": 1,
                                "lastTransitionTime": condition_time}]}]},
    })
    gateway_owner = _owner("gateway.networking.k8s.io/v1", "Gateway", name, namespace)
    gateway_owner.pop("blockOwnerDeletion")
    gateway_owner.pop("controller")
    cluster.add({"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": _meta(deployment_name, namespace, created, {**gateway_labels, **identity},
                                   copied or None, gateway_owner)})
    cluster.add(_service({"name": deployment_name, "namespace": namespace, "clusterIP": service_ip,
                          "labels": {**gateway_labels, **identity},
                          "annotations": {"networking.istio.io/traffic-distribution": "PreferClose", **copied},
                          "owner": gateway_owner, "selector": {"gateway.networking.k8s.io/gateway-name": name},
                          "ports": [{"name": "status-port", "port": 15021, "appProtocol": "tcp"},
                                    {"name": "mesh", "port": 15008, "appProtocol": "all"}]}, cluster))
    pod_labels = {"sidecar.istio.io/inject": "false", "istio.io/dataplane-mode": "none",
                  "service.istio.io/canonical-name": deployment_name, "service.istio.io/canonical-revision": "latest",
                  **managed}
    rendered_by = entry.get("istiodRevision") or revision or "default"
    annotations = {**copied, "istio.io/rev": rendered_by, "prometheus.io/path": "/stats/prometheus",
                   "prometheus.io/port": "15020", "prometheus.io/scrape": "true"}
    istiod_host = "istiod.istio-system.svc" if rendered_by == "default" else f"istiod-{rendered_by}.istio-system.svc"
    container = _WAYPOINT_CONTAINERS.get(class_name, "istio-proxy")
    containers = [{"name": container, "image": entry["image"],
                   "args": ["proxy", "waypoint", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                            "--serviceCluster", f"{deployment_name}.$(POD_NAMESPACE)", "--proxyLogLevel", "warning",
                            "--proxyComponentLogLevel", "misc:error", "--log_output_level", "default:info"],
                   "env": {"CA_ADDR": f"{istiod_host}:15012", "ISTIO_META_WORKLOAD_NAME": deployment_name,
                           "ISTIO_META_OWNER": f"kubernetes://apis/apps/v1/namespaces/{namespace}/deployments/"
                                               f"{deployment_name}",
                           "ISTIO_META_CLUSTER_ID": "Kubernetes", "TRUST_DOMAIN": "cluster.local"},
                   "ports": [{"port": 15020, "name": "metrics"}, {"port": 15021, "name": "status-port"},
                             {"port": 15090, "name": "http-envoy-prom"}]}]
    _deployment({"name": deployment_name, "namespace": namespace, "labels": pod_labels, "workloadLabels": managed,
                 "workloadAnnotations": copied,
                 "selector": {"gateway.networking.k8s.io/gateway-name": name}, "annotations": annotations,
                 "serviceAccount": deployment_name, "containers": containers, "replicas": entry.get("replicas", 1),
                 "podOverrides": [{**o, "containers": {container: o["image"]}} if "image" in o else o
                                  for o in entry.get("podOverrides") or []],
                 "previous": [{container: image} for image in entry.get("previous") or []],
                 "created": created},
                cluster, owner=gateway_owner)


_WORKLOAD_BUILDERS = {"Deployment": _deployment, "DaemonSet": _daemonset, "Waypoint": _waypoint}
_WORKLOAD_KEYS = {"kind", "name", "namespace", "labels", "workloadLabels", "selector", "annotations",
                  "serviceAccount", "replicas", "nodes", "containers", "podOverrides", "previous", "created",
                  "image", "revision", "for", "gatewayLabels", "programmed", "workloadAnnotations",
                  "className", "gatewayAnnotations", "nameOverride", "istiodRevision", "allowedFrom"}


def _check_workload(entry: dict) -> None:
    unknown = set(entry) - _WORKLOAD_KEYS
    where = f"workload {entry.get('namespace')}/{entry.get('name')}"
    if unknown:
        raise ValueError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    if entry.get("kind", "Deployment") not in _WORKLOAD_BUILDERS:
        raise ValueError(f"{where}: kind must be one of {', '.join(_WORKLOAD_BUILDERS)}")
    if not entry.get("name") or not entry.get("namespace"):
        raise ValueError(f"{where}: name and namespace are required")
    if entry.get("kind") == "Waypoint" and not entry.get("image"):
        raise ValueError(f"{where}: a Waypoint needs an image")
    if entry.get("kind", "Deployment") != "Waypoint" and not entry.get("containers"):
        raise ValueError(f"{where}: containers are required")


def expand(doc: dict) -> list[dict]:
    """All objects of a (base-resolved) scenario document, in a stable order."""
    with gc_paused():
        return _expand(doc)


def _expand(doc: dict) -> list[dict]:
    cluster = _Cluster(nodes=[str(n) for n in doc.get("nodes") or []],
                       created=doc.get("created", DEFAULT_CREATED), started=doc.get("started", DEFAULT_STARTED))
    kubernetes_version = doc.get("kubernetesVersion", KUBERNETES_VERSION)
    for index, node in enumerate(cluster.nodes):
        cluster.add(_node(node, index, cluster, kubernetes_version))
    cluster.add(_service({"name": "kubernetes", "namespace": "default", "clusterIP": "10.96.0.1",
                          "labels": {"component": "apiserver", "provider": "kubernetes"},
                          "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}, cluster))
    for entry in doc.get("workloads") or []:
        _check_workload(entry)
        _WORKLOAD_BUILDERS[entry.get("kind", "Deployment")](entry, cluster)
    for entry in doc.get("services") or []:
        cluster.add(_service(entry, cluster))
    for obj in doc.get("objects") or []:
        cluster.add(_plain_object(obj))
    declared = doc.get("namespaces") or {}
    explicit = {o["metadata"]["name"] for o in cluster.objects if o["kind"] == "Namespace"}
    service_accounts = {(o["metadata"]["namespace"], o["metadata"]["name"])
                        for o in cluster.objects if o["kind"] == "ServiceAccount"}
    names = sorted((set(SYSTEM_NAMESPACES) | set(declared) | cluster.namespaces_used) - explicit)
    extra = [_namespace(n, declared.get(n), cluster.created) for n in names]
    for namespace, account in sorted(cluster.service_accounts | {(n, "default") for n in set(names) | explicit}):
        if (namespace, account) not in service_accounts:
            extra.append({"apiVersion": "v1", "kind": "ServiceAccount",
                          "metadata": _meta(account, namespace, cluster.created)})
    return extra + cluster.objects


def _plain_object(obj: dict) -> dict:
    if not isinstance(obj, dict) or not obj.get("apiVersion") or not obj.get("kind") or \
            not (obj.get("metadata") or {}).get("name"):
        raise ValueError(f"objects: each needs apiVersion, kind and metadata.name: {str(obj)[:80]}")
    return obj
