"""`verify -A` against `verify -n` on the simulated cluster: how time and API requests grow with namespaces.

Usage: python benchmarks/fleet_bench.py [--runs 3] [--namespaces 1,10,50]

For each size N, a cluster of Bookinfo plus N team namespaces (each with its own waypoint, a
70/30 route and a curl client) is served in this process; `kubectl-waypoint verify -A` runs as a
separate process, once with the static checks only (`--skip routing,authorization`, the API cost)
and once whole (the probes too). Printed: median wall time, API requests (exec sessions apart) and
the ratio to one namespace verified alone with `verify -n team-00`. The goal (issue 15): list
requests do not grow with N, and 50 namespaces take no more than a few times one namespace.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from measure import plugin_path

from kubectl_waypoint.sim import SimCluster, generate_fleet_scenario


def run(plugin: str, sim: SimCluster, kubeconfig: str, args: list[str], runs: int) -> tuple[float, int, int]:
    walls, requests, execs = [], 0, 0
    for _ in range(runs):
        sim.clear_requests()
        start = time.perf_counter()
        subprocess.run([plugin, "verify", "--kubeconfig", kubeconfig, "-o", "json", *args], capture_output=True)
        walls.append(time.perf_counter() - start)
        execs = sum(1 for r in sim.requests if r.resource == "pods/exec")
        requests = len(sim.requests) - execs
    return statistics.median(walls), requests, execs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--namespaces", default="1,10,50")
    args = parser.parse_args()
    plugin = plugin_path()
    static = ["--skip", "routing,authorization"]
    print(f"{'N':>4} {'mode':<8} {'verify -n team-00':>18} {'verify -A':>10} {'ratio':>6} "
          f"{'API req -n':>11} {'API req -A':>11} {'execs -A':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for n in (int(x) for x in args.namespaces.split(",")):
            with SimCluster(generate_fleet_scenario(n)) as sim:
                kubeconfig = sim.write_kubeconfig(os.path.join(folder, f"kubeconfig-{n}"))
                for mode, extra in (("static", static), ("probes", [])):
                    one, one_requests, _ = run(plugin, sim, kubeconfig, ["-n", "team-00", *extra], args.runs)
                    every, every_requests, every_execs = run(plugin, sim, kubeconfig, ["-A", *extra], args.runs)
                    print(f"{n:>4} {mode:<8} {one:>17.2f}s {every:>9.2f}s {every / one:>6.1f} "
                          f"{one_requests:>11} {every_requests:>11} {every_execs:>9}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
