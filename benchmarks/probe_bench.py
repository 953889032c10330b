"""200 requests through `kubectl-waypoint probe` versus one raw `kubectl exec` running 200 curls in a loop.

Usage: python benchmarks/probe_bench.py [--requests 200] [--runs 5]

Starts the simulated bookinfo cluster (HTTPS, bearer token, the simulated mesh behind the real
curl) and, alternating, runs
  kubectl-waypoint probe -n curl deploy/curl URL --count N --expect-split reviews-v1=80,reviews-v2=20
  kubectl exec -n curl deploy/curl -- sh -c 'for i in $(seq N); do curl -s URL; done'
The mesh lets `sh -c` through only because this benchmark enables it. Both send N requests from
the same pod through the same mesh, each on a new connection; the probe also parses, classifies
and judges them. Prints the median wall time of each, their ratio (target <= 1.2) and checks
that the mesh saw N requests per run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from measure import kubectl_path, plugin_path

from kubectl_waypoint.sim import SimCluster

URL = "http://productpage.bookinfo:9080/productpage"


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 4):  # 4: too few requests for the split test, still all sent
        sys.exit(f"{argv[0]} failed with exit {result.returncode}: {result.stderr.decode()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    kubectl = kubectl_path()
    plugin = plugin_path()

    with tempfile.TemporaryDirectory() as folder, SimCluster("bookinfo") as sim:
        sim.mesh.allow_shell = True
        kubeconfig = sim.write_kubeconfig(os.path.join(folder, "kubeconfig"))
        env = {**os.environ, "KUBECONFIG": kubeconfig, "HOME": folder}
        n = args.requests
        commands = {
            "probe": [plugin, "probe", "-n", "curl", "deploy/curl", URL, "--count", str(n),
                      "--expect-split", "reviews-v1=80,reviews-v2=20", "-o", "json"],
            "kubectl exec loop": [kubectl, "exec", "-n", "curl", "deploy/curl", "--", "sh", "-c",
                                  f"for i in $(seq {n}); do curl -s {URL}; done"],
        }
        timings: dict[str, list[float]] = {name: [] for name in commands}
        for run in range(args.runs + 1):  # the first round warms caches (kubectl discovery, imports)
            for name, argv in commands.items():
                sim.mesh.clear_records()
                elapsed = timed(argv, env)
                seen = len(sim.mesh.records)
                if seen != n:
                    sys.exit(f"{name}: the mesh saw {seen} requests, expected {n}")
                if run:
                    timings[name].append(elapsed)
        probe, loop = (statistics.median(timings[name]) for name in commands)
        curl_version = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1]
        print(f"{n} requests, median of {args.runs} runs (curl {curl_version}, {os.cpu_count()} CPUs):")
        for name in commands:
            print(f"  {name:<18} {statistics.median(timings[name]):6.3f}s   runs: "
                  + " ".join(f"{t:.3f}" for t in timings[name]))
        print(f"  ratio probe / loop {probe / loop:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
