"""A waypoint's own account of its xDS sync, from its Envoy stats: the fallback when istiod's
`/debug/syncz` is off (ENABLE_DEBUG_ON_HTTP=false answers `404 page not found`).

Pure logic, no I/O. The text is what `pilot-agent request GET stats/prometheus` prints inside the
waypoint's `istio-proxy` container (Envoy's admin `/stats/prometheus`). Only stats a waypoint
actually emits are used. Istio's bootstrap (tools/packaging/common/envoy_bootstrap.json,
`stats_config.stats_matcher.inclusion_list`) keeps only stats whose names start with `reporter=`,
`workload_discovery` (waypoints), `component`, `istio`, and the prefixes pkg/bootstrap/config.go
always adds (`requiredEnvoyStatsMatcherInclusionPrefixes`: cluster_manager, listener_manager,
server, cluster.xds-grpc, wasm). So these exist on every waypoint:

- `cluster_manager.cds.update_success|update_rejected` and the same for `listener_manager.lds`:
  the counters pilot-agent's own readiness check reads (pilot/cmd/pilot-agent/status/util/stats.go);
- `server.state` (0 LIVE, 1 DRAINING, 2 PRE_INITIALIZING, 3 INITIALIZING);
- `cluster.xds-grpc.upstream_rq_active`: the open ADS stream to pilot-agent, which holds it only
  while its own stream to istiod is up;
- `component.proxy.tag.<version>;.istio_build`, printed as `istio_build{component="proxy",tag=...}`.

Envoy's `control_plane.connected_state` is NOT among them (no inclusion prefix matches it), nor
are per-cluster EDS or RDS counters: EDS, RDS and WDS cannot be judged from the stats, and a push
still in flight (istiod's STALE without an error) is invisible to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import BadInput
from .prometheus import MetricsError, Sample, parse

CDS_SUCCESS = "envoy_cluster_manager_cds_update_success"
CDS_REJECTED = "envoy_cluster_manager_cds_update_rejected"
LDS_SUCCESS = "envoy_listener_manager_lds_update_success"
LDS_REJECTED = "envoy_listener_manager_lds_update_rejected"
SERVER_STATE = "envoy_server_state"
XDS_STREAMS = "envoy_cluster_upstream_rq_active"  # with cluster_name="xds-grpc"
XDS_CLUSTER = "xds-grpc"
BUILD = "istio_build"  # with component="proxy", tag=<the proxy's Istio version>
REQUIRED = (CDS_SUCCESS, CDS_REJECTED, LDS_SUCCESS, LDS_REJECTED, SERVER_STATE)
SERVER_STATES = {0: "LIVE", 1: "DRAINING", 2: "PRE_INITIALIZING", 3: "INITIALIZING"}

_NOT_FOUND = "404 page not found"

def parse_prometheus(text: str, source: str) -> list[Sample]:
    """Samples of Prometheus text exposition; BadInput naming the line for anything else."""
    body = text.strip()
    if body.startswith(_NOT_FOUND):
        raise BadInput(f"{source} answered {_NOT_FOUND!r} instead of Prometheus metrics.")
    if body[:1] == "<":
        raise BadInput(f"{source} answered an HTML page instead of Prometheus metrics.")
    try:
        samples = parse(text)
    except MetricsError as error:
        line = text.splitlines()[error.line - 1].strip()
        shown = line if len(line) <= 60 else line[:60] + "..."
        raise BadInput(f"{source} line {error.line} ({shown!r}) is not a Prometheus sample.") from None
    if not samples:
        raise BadInput(f"{source} holds no metrics.")
    return samples


@dataclass(frozen=True)
class ProxyXds:
    """What one waypoint pod's Envoy says about its configuration from istiod."""

    pod: str
    namespace: str
    cds_accepted: int
    cds_rejected: int
    lds_accepted: int
    lds_rejected: int
    server_state: int
    xds_streams: int  # open ADS streams to pilot-agent (cluster xds-grpc)
    version: str | None  # istio_build's tag: the proxy's Istio version

    @property
    def evidence(self) -> tuple[str, ...]:
        return (f"Envoy server state: {SERVER_STATES.get(self.server_state, self.server_state)}",
                f"open xDS streams (cluster xds-grpc): {self.xds_streams}",
                f"CDS updates: {self.cds_accepted} accepted, {self.cds_rejected} rejected",
                f"LDS updates: {self.lds_accepted} accepted, {self.lds_rejected} rejected",
                f"proxy version (istio_build): {self.version or 'not reported'}")


def read_proxy_xds(text: str, pod: str, namespace: str) -> ProxyXds:
    """The xDS stats of a waypoint pod from its Prometheus text; BadInput when they are not there."""
    source = f"The Envoy stats of waypoint pod {namespace}/{pod}"
    values: dict[str, float] = {}
    streams: float | None = None
    version = None
    for sample in parse_prometheus(text, source):
        labels = dict(sample.labels)
        if sample.name in REQUIRED and not labels:
            values[sample.name] = sample.value
        elif sample.name == XDS_STREAMS and labels.get("cluster_name") == XDS_CLUSTER:
            streams = sample.value
        elif sample.name == BUILD and labels.get("component") == "proxy" and labels.get("tag"):
            version = labels["tag"]
    missing = [name for name in REQUIRED if name not in values]
    if streams is None:
        missing.append(f'{XDS_STREAMS}{{cluster_name="{XDS_CLUSTER}"}}')
    if missing:
        raise BadInput(f"{source} lack {', '.join(missing)}, which every Istio proxy reports; "
                       "check that the pod runs Istio's Envoy (proxyv2).")
    counts = {name: _count(value, name, source) for name, value in values.items()}
    return ProxyXds(pod, namespace, counts[CDS_SUCCESS], counts[CDS_REJECTED], counts[LDS_SUCCESS],
                    counts[LDS_REJECTED], counts[SERVER_STATE], _count(streams, XDS_STREAMS, source), version)


def _count(value: float, name: str, source: str) -> int:
    if math.isnan(value) or math.isinf(value) or value < 0 or value != int(value):
        raise BadInput(f"{source}: {name} is {value}, not a count.")
    return int(value)
