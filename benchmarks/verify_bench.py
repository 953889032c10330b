"""`verify -n bookinfo` on the simulated cluster: wall time and API requests, and how they grow.

Usage: python benchmarks/verify_bench.py [--runs 3]

Builds Bookinfo variants with W waypoints and R weighted HTTPRoutes in the namespace (each route
on its own Service with two backend Deployments, the Services spread over the waypoints), runs
`kubectl-waypoint verify -n bookinfo -o json` as a separate process against each, and prints the
median wall time, the API requests (the server's request log, exec sessions counted apart) and
the probe requests the mesh answered, and the CPU time of the verify process itself (the
simulated mesh, a Python proxy in this process, is the bottleneck of the probes on a small
machine, not the tool). The static checks alone (`--skip routing,authorization`)
are measured too, to separate API cost from probe cost.
"""

from __future__ import annotations

import argparse
import resource
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from measure import plugin_path

from kubectl_waypoint.sim import SimCluster, generate_routes_scenario

def measure(plugin: str, sim: SimCluster, kubeconfig: str, extra: list[str], runs: int) -> dict:
    walls, cpus, requests, execs, result = [], [], 0, 0, None
    for _ in range(runs):
        sim.clear_requests()
        sim.mesh.clear_records()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([plugin, "verify", "--kubeconfig", kubeconfig, "-n", "bookinfo", "-o", "json", *extra],
                              capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if done.returncode not in (0, 1, 4):
            sys.exit(f"verify failed ({done.returncode}): {done.stderr}")
        result = json.loads(done.stdout)["result"]
        execs = sum(1 for r in sim.requests if r.resource == "pods/exec")
        requests = len(sim.requests) - execs
        assert not sim.writes(), "verify sent a write request"
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "api": requests, "exec": execs,
            "probed": len(sim.mesh.records), "result": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    plugin = plugin_path()
    print(f"{'waypoints':>9} {'routes':>6} {'checks':>8} {'median s':>9} {'cpu s':>6} {'API req':>8} {'execs':>6} "
          f"{'probe req':>9}  result")
    for waypoints, routes in ((1, 1), (1, 5), (5, 5), (10, 10), (10, 20)):
        with tempfile.TemporaryDirectory() as folder, SimCluster(generate_routes_scenario(waypoints, routes)) as sim:
            kubeconfig = sim.write_kubeconfig(os.path.join(folder, "kubeconfig"))
            for label, extra in (("static", ["--skip", "routing,authorization"]), ("all", [])):
                row = measure(plugin, sim, kubeconfig, extra, args.runs)
                print(f"{waypoints:9d} {routes:6d} {label:>8} {row['wall']:9.2f} {row['cpu']:6.2f} {row['api']:8d} {row['exec']:6d} "
                      f"{row['probed']:9d}  {row['result']}")


if __name__ == "__main__":
    main()
