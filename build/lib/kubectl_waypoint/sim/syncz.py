"""istiod's `/debug/syncz`, as `pilot-discovery request GET /debug/syncz` prints it in the simulation.

Derived from the live object store, so a test that rolls a waypoint sees the new version: every
waypoint and ztunnel pod is connected to an istiod pod of the revision it belongs to (its
istio.io/rev through revision tags, else the default), with the types such a proxy subscribes to
and the version its image carries. A scenario's `syncz:` section breaks it on purpose:

    syncz:
      shape: legacy              # recent (default, with `resources`) or legacy (sent/acked fields only)
      proxies:
        - pod: waypoint-*        # glob on the pod name (and optionally namespace:)
          disconnected: true     # absent from every istiod's answer
          subscribed: []         # connected, subscribed to nothing
          stale: [CDS]           # sent but not acked
          lastError: "..."       # a rejected push (on LDS)
          version: 1.27.3        # the version the proxy reports
"""

from __future__ import annotations

import fnmatch
import hashlib
import json

TYPE_URLS = {
    "CDS": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "LDS": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "RDS": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    "EDS": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "WDS": "type.googleapis.com/istio.workload.Address",
    "WADS": "type.googleapis.com/istio.security.Authorization",
}
LEGACY_PREFIX = {"CDS": "cluster", "LDS": "listener", "RDS": "route", "EDS": "endpoint"}
# What each kind of proxy subscribes to (the procedure's waypoint row: 4 (CDS,LDS,EDS,WDS)).
SUBSCRIPTIONS = {"waypoint": ("CDS", "LDS", "EDS", "WDS"), "ztunnel": ("WDS", "WADS")}
PROXY_KINDS = {"waypoint": ("gateway.istio.io/managed", "istio.io-mesh-controller"), "ztunnel": ("app", "ztunnel")}
CONTAINERS = {"waypoint": "istio-proxy", "ztunnel": "istio-proxy"}
SENT_TIME = "2025-11-24T09:31:05.118273Z"


def _labels(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def _revision(pod: dict) -> str | None:
    meta = pod.get("metadata") or {}
    return (meta.get("labels") or {}).get("istio.io/rev") or (meta.get("annotations") or {}).get("istio.io/rev")


def _resolve(revision: str | None, revisions: set[str], tags: dict[str, str]) -> str | None:
    if revision:
        return revision if revision in revisions else tags.get(revision)
    if "default" in revisions:
        return "default"
    return tags.get("default") or (next(iter(revisions)) if len(revisions) == 1 else None)


def _version(pod: dict, kind: str) -> str:
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") == CONTAINERS[kind]:
            image = container.get("image") or ""
            last = image.rsplit("/", 1)[-1].split("@", 1)[0]
            return last.split(":", 1)[1] if ":" in last else ""
    return ""


def _nonce(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


def _override(config: dict, pod: dict) -> dict:
    meta = pod.get("metadata") or {}
    for rule in config.get("proxies") or []:
        if fnmatch.fnmatch(meta.get("name", ""), rule.get("pod", "*")) and \
                fnmatch.fnmatch(meta.get("namespace", ""), rule.get("namespace", "*")):
            return rule
    return {}


def syncz_entries(store, config: dict, istiod_pod: dict) -> list[dict]:
    """The proxies connected to this istiod pod, as istiod reports them."""
    istiods = [p for p in store.list("pods") if _labels(p).get("app") == "istiod"]
    revisions = {_revision(p) or "default" for p in istiods}
    tags = {_labels(w).get("istio.io/tag"): _labels(w).get("istio.io/rev")
            for w in store.list("mutatingwebhookconfigurations") if _labels(w).get("istio.io/tag")}
    own_revision = _revision(istiod_pod) or "default"
    peers = sorted((p["metadata"]["name"] for p in istiods if (_revision(p) or "default") == own_revision))
    legacy = config.get("shape") == "legacy"
    entries = []
    for kind, (key, value) in PROXY_KINDS.items():
        for pod in store.list("pods"):
            if _labels(pod).get(key) != value or (pod.get("status") or {}).get("phase") != "Running":
                continue
            if _resolve(_revision(pod), revisions, tags) != own_revision:
                continue
            name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
            # Spread proxies over the revision's istiod replicas, stably.
            if peers[int(_nonce(name), 16) % len(peers)] != istiod_pod["metadata"]["name"]:
                continue
            override = _override(config, pod)
            if override.get("disconnected"):
                continue
            entries.append(_entry(kind, name, namespace, override, legacy, _version(pod, kind)))
    return entries


def _entry(kind: str, name: str, namespace: str, override: dict, legacy: bool, version: str) -> dict:
    subscribed = override.get("subscribed", SUBSCRIPTIONS[kind])
    stale = set(override.get("stale") or ())
    entry: dict = {"cluster_id": "Kubernetes", "proxy": f"{name}.{namespace}", "proxy_type": kind,
                   "istio_version": override.get("version", version)}
    resources = {}
    for short in subscribed:
        sent = _nonce(name, short, "sent")
        acked = _nonce(name, short, "old") if short in stale else sent
        if short in LEGACY_PREFIX:
            entry[f"{LEGACY_PREFIX[short]}_sent"], entry[f"{LEGACY_PREFIX[short]}_acked"] = sent, acked
        resource = {"sent": sent, "acked": acked, "sentTime": SENT_TIME}
        if override.get("lastError") and short == "LDS":
            resource["lastError"] = override["lastError"]
        resources[TYPE_URLS[short]] = resource
    if resources and not legacy:
        entry["resources"] = resources
    if legacy:
        entry.pop("proxy_type")
        entry.pop("cluster_id")
    return entry


def syncz_handler(store, config: dict):
    """An exec handler answering `pilot-discovery request GET /debug/syncz` in istiod's container."""

    def handle(request, streams) -> int:
        streams.write_stdout(json.dumps(syncz_entries(store, config, request.pod), indent=2).encode() + b"\n")
        return 0

    return handle


def is_syncz_request(argv: list[str]) -> bool:
    return argv[:3] == ["pilot-discovery", "request", "GET"] and len(argv) >= 4 \
        and argv[3].split("?", 1)[0] == "/debug/syncz"
