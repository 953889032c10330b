"""A waypoint's Envoy stats, as `pilot-agent request GET stats/prometheus` prints them in the simulation.

Only the xDS part, consistent with what istiod's /debug/syncz says of the same pod (the scenario's
`syncz: proxies:` rules, sim/syncz.py): connected or not, the types it accepted, a rejected push.
Only stats Istio's bootstrap keeps are printed (the inclusion list in
tools/packaging/common/envoy_bootstrap.json plus pkg/bootstrap/config.go's required prefixes:
cluster_manager, listener_manager, server, cluster.xds-grpc, component/istio), in Envoy's
Prometheus format: `# TYPE` lines, counters then gauges, `{}` on a stat without tags. The telemetry
(`istio_requests_total`) of the same answer is generated elsewhere; the two are joined into one.
"""

from __future__ import annotations

import hashlib

from ..prometheus import PROXY_CONTAINER, STATS_COMMAND
from .syncz import PROXY_KINDS, SUBSCRIPTIONS, override_for, proxy_version

_WAYPOINT_LABEL, _WAYPOINT_VALUE = PROXY_KINDS["waypoint"]
_RECONNECT_ATTEMPTS = 41  # failed stream attempts of a proxy cut off from istiod


def _number(*parts: str) -> int:
    return int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:12], 16)


def envoy_stats_lines(pod: str, override: dict, version: str) -> list[str]:
    """The xDS stats of waypoint `pod` under its scenario rule `override` (see sim/syncz.py)."""
    connected = not override.get("disconnected")
    subscribed = set(override.get("subscribed", SUBSCRIPTIONS["waypoint"]))
    stale = set(override.get("stale") or ())
    failures = 0 if connected else _RECONNECT_ATTEMPTS
    counters: dict[str, int] = {}
    gauges: dict[str, int] = {}
    for short, prefix in (("CDS", "envoy_cluster_manager_cds"), ("LDS", "envoy_listener_manager_lds")):
        accepted = 2 + _number(pod, short) % 9 if short in subscribed else 0
        rejected = 1 if short == "LDS" and override.get("lastError") else 0
        in_flight = 1 if short in stale else 0  # received, neither accepted nor rejected yet
        counters.update({f"{prefix}_init_fetch_timeout": 0, f"{prefix}_update_attempt": 1 + accepted + rejected
                         + failures + in_flight, f"{prefix}_update_failure": failures,
                         f"{prefix}_update_rejected": rejected, f"{prefix}_update_success": accepted})
        gauges[f"{prefix}_version"] = _number(pod, short, "version") if accepted else 0
    streams = 1 if connected else 0
    xds = '{cluster_name="xds-grpc"}'
    counters.update({f"envoy_cluster_upstream_cx_connect_fail{xds}": failures,
                     f"envoy_cluster_upstream_rq_total{xds}": 1 + failures})
    gauges.update({
        "envoy_cluster_manager_active_clusters": 9 + _number(pod, "clusters") % 30 if "CDS" in subscribed else 1,
        "envoy_cluster_manager_warming_clusters": 0,
        f"envoy_cluster_upstream_cx_active{xds}": streams,
        f"envoy_cluster_upstream_rq_active{xds}": streams,
        "envoy_listener_manager_total_listeners_active": 4 if "LDS" in subscribed else 0,
        "envoy_listener_manager_workers_started": 1,
        "envoy_server_live": 1,
        "envoy_server_state": 0,
        "envoy_server_uptime": 1800 + _number(pod, "uptime") % 600,
        f'istio_build{{component="proxy",tag="{version}"}}': 1,
    })
    return [*_section(counters, "counter"), *_section(gauges, "gauge")]


def _section(values: dict[str, int], kind: str) -> list[str]:
    lines: list[str] = []
    previous = None
    for key in sorted(values):
        name = key.split("{", 1)[0]
        if name != previous:
            lines.append(f"# TYPE {name} {kind}")
            previous = name
        lines.append(f"{key if '{' in key else key + '{}'} {values[key]}")
    return lines


def is_stats_request(request) -> bool:
    """`pilot-agent request GET stats/prometheus` in a waypoint's istio-proxy container."""
    argv, labels = request.argv, (request.pod.get("metadata") or {}).get("labels") or {}
    return len(argv) == 4 and argv[:3] == STATS_COMMAND[:3] and argv[3].lstrip("/") == STATS_COMMAND[3] \
        and request.container == PROXY_CONTAINER and labels.get(_WAYPOINT_LABEL) == _WAYPOINT_VALUE


def waypoint_stats_handler(config: dict):
    """An exec handler printing the waypoint's Envoy xDS stats."""

    def handle(request, streams) -> int:
        override = override_for(config, request.pod)
        version = override.get("version") or proxy_version(request.pod, "waypoint")
        streams.write_stdout("\n".join(envoy_stats_lines(request.pod_name, override, version)) + "\n")
        return 0

    return handle
