"""Server-side `Table` answers, so `kubectl get pods -A` prints the columns people expect.

kubectl asks for `application/json;as=Table;g=meta.k8s.io` when it prints for humans. Only the
common columns are produced; anything without a column set gets Name and Age.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

Row = Callable[[dict], list]


def human_duration(seconds: float) -> str:
    """kube's duration.HumanDuration: 45s, 5m10s, 3h, 2d5h, 400d, 2y10d."""
    s = int(seconds)
    if s < 120:
        return f"{max(s, 0)}s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"


def _age(obj: dict, now: datetime.datetime) -> str:
    created = obj["metadata"].get("creationTimestamp")
    if not created:
        return "<unknown>"
    then = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return human_duration((now - then).total_seconds())


def _pod_row(pod: dict) -> list:
    statuses = pod.get("status", {}).get("containerStatuses", [])
    ready = sum(1 for s in statuses if s.get("ready"))
    status = pod.get("status", {}).get("phase", "Unknown")
    for s in statuses:
        waiting = (s.get("state") or {}).get("waiting")
        if waiting:
            status = waiting.get("reason", status)
    restarts = sum(s.get("restartCount", 0) for s in statuses)
    return [f"{ready}/{len(pod.get('spec', {}).get('containers', []))}", status, restarts]


def _pod_wide(pod: dict) -> list:
    return [pod.get("status", {}).get("podIP", "<none>"), pod.get("spec", {}).get("nodeName", "<none>"), "<none>",
            "<none>"]


def _containers(obj: dict) -> list:
    containers = obj["spec"]["template"]["spec"]["containers"]
    selector = obj["spec"].get("selector", {}).get("matchLabels", {})
    return [",".join(c["name"] for c in containers), ",".join(c["image"] for c in containers),
            ",".join(f"{k}={v}" for k, v in selector.items())]


def _deployment_row(d: dict) -> list:
    status = d.get("status", {})
    return [f"{status.get('readyReplicas', 0)}/{d['spec'].get('replicas', 0)}", status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0)]


def _daemonset_row(d: dict) -> list:
    s = d.get("status", {})
    selector = d["spec"]["template"]["spec"].get("nodeSelector") or {}
    return [s.get("desiredNumberScheduled", 0), s.get("currentNumberScheduled", 0), s.get("numberReady", 0),
            s.get("updatedNumberScheduled", 0), s.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>"]


def _service_row(svc: dict) -> list:
    spec = svc["spec"]
    ports = ",".join(f"{p['port']}/{p.get('protocol', 'TCP')}" for p in spec.get("ports", [])) or "<none>"
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), "<none>", ports]


def _node_row(node: dict) -> list:
    ready = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}.get("Ready")
    return ["Ready" if ready == "True" else "NotReady", "<none>"]


def _node_after(node: dict) -> list:
    status = node.get("status", {})
    internal = [a["address"] for a in status.get("addresses", []) if a.get("type") == "InternalIP"]
    return [status.get("nodeInfo", {}).get("kubeletVersion", ""), internal[0] if internal else "<none>"]


def _gateway_row(gw: dict) -> list:
    addresses = gw.get("status", {}).get("addresses") or [{}]
    programmed = {c["type"]: c["status"] for c in gw.get("status", {}).get("conditions", [])}.get("Programmed", "")
    return [gw["spec"].get("gatewayClassName", ""), addresses[0].get("value", ""), programmed]


def _column(name: str, kind: str = "string", priority: int = 0) -> dict:
    return {"name": name, "type": kind, "format": "name" if name == "Name" else "", "description": "",
            "priority": priority}


_TABLES: dict[str, tuple[list[dict], Row | None, list[dict], Row | None]] = {
    # resource: (columns before Age, their cells, columns after Age, their cells)
    "pods": ([_column("Ready"), _column("Status"), _column("Restarts", "integer")], _pod_row,
             [_column("IP", priority=1), _column("Node", priority=1), _column("Nominated Node", priority=1),
              _column("Readiness Gates", priority=1)], _pod_wide),
    "deployments": ([_column("Ready"), _column("Up-to-date", "integer"), _column("Available", "integer")],
                    _deployment_row, [_column("Containers", priority=1), _column("Images", priority=1),
                                      _column("Selector", priority=1)], _containers),
    "daemonsets": ([_column("Desired", "integer"), _column("Current", "integer"), _column("Ready", "integer"),
                    _column("Up-to-date", "integer"), _column("Available", "integer"), _column("Node Selector")],
                   _daemonset_row, [_column("Containers", priority=1), _column("Images", priority=1),
                                    _column("Selector", priority=1)], _containers),
    "services": ([_column("Type"), _column("Cluster-IP"), _column("External-IP"), _column("Port(s)")],
                 _service_row, [], None),
    "nodes": ([_column("Status"), _column("Roles")], _node_row,
              [_column("Version"), _column("Internal-IP", priority=1)], _node_after),
    "namespaces": ([_column("Status")], lambda ns: [ns.get("status", {}).get("phase", "Active")], [], None),
    "gateways": ([_column("Class"), _column("Address"), _column("Programmed")], _gateway_row, [], None),
}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def table(plural: str, objects: list[dict], list_meta: dict) -> dict:
    """A meta.k8s.io/v1 Table of `objects`, rows carrying each object's metadata like the server's."""
    before, cells, after, wide = _TABLES.get(plural, ([], None, [], None))
    now = datetime.datetime.now(datetime.timezone.utc)
    rows = []
    for obj in objects:
        row = [obj["metadata"]["name"], *(cells(obj) if cells else []), _age(obj, now), *(wide(obj) if wide else [])]
        rows.append({"cells": row, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                              "metadata": obj["metadata"]}})
    columns = [_column("Name"), *before, _column("Age"), *after]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": columns,
            "rows": rows}
