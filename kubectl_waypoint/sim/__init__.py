"""A simulated ambient-mesh cluster: a real Kubernetes API subset served on loopback.

Used by `kubectl waypoint demo`, the integration tests and the benchmarks; the real kubectl and
the Python kubernetes client talk to it like to any API server. Server side: stdlib only
(http.server, ssl), PyYAML for scenarios, the openssl command for the throwaway certificate.
"""

from .cluster import SimCluster
from .podexec import ExecRequest, ExecRule, ExecStreams, ExecutableNotFound
from .large import generate_fleet_scenario, generate_large_scenario, generate_routes_scenario
from .scenario import Scenario, load_scenario, scenario_names
from .server import RequestRecord

__all__ = [
    "ExecRequest",
    "ExecRule",
    "ExecStreams",
    "ExecutableNotFound",
    "RequestRecord",
    "Scenario",
    "SimCluster",
    "generate_large_scenario",
    "generate_fleet_scenario",
    "generate_routes_scenario",
    "load_scenario",
    "scenario_names",
]
