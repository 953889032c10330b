"""`skew -A` and `verify -n` at scale: wall time, API requests and peak RSS per run.

Usage: python benchmarks/scale.py [--scenario NODES:WAYPOINTS ...] [--runs 3]
(default scenarios: 5000:200 and 1000:2000, i.e. 5,000 nodes and 2,000 waypoint namespaces)

Each scenario is a cluster from `generate_large_scenario`, served by the simulated API server in
its own process (Linux carries the spawning process's high-water mark into ru_maxrss, so the
measured tool must be spawned by a small process; see benchmarks/skew_scale.py). Every command
runs `--runs` times; the table shows the median wall time, the API requests of one run (from the
server's request log, with the number of list pages they needed) and the peak RSS. A run that
sends a write request, or requests that grow with objects rather than pages, fails the benchmark.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import sys
import tempfile

from kubectl_waypoint.kube.client import PAGE_SIZE
from measure import plugin_path, timed

from kubectl_waypoint.sim import SimCluster, generate_large_scenario

NAMESPACE = "mesh-0000"  # generate_large_scenario's first waypoint namespace


def serve(nodes: int, waypoints: int, folder: str, conn) -> None:
    """The simulated cluster, in its own process; answers "clear", "log" and "stop"."""
    scenario = generate_large_scenario(nodes=nodes, waypoint_namespaces=waypoints)
    pods = sum(1 for o in scenario.objects if o.get("kind") == "Pod")
    with SimCluster(scenario, tls=True) as sim:
        conn.send((sim.write_kubeconfig(os.path.join(folder, "kubeconfig")), pods))
        while (command := conn.recv()) != "stop":
            if command == "clear":
                sim.clear_requests()
                conn.send(None)
            else:
                conn.send([(r.method, r.path, r.resource, r.query.get("continue", ""), r.is_write)
                           for r in sim.requests])


def pages_needed(objects: int) -> int:
    return max(1, math.ceil(objects / PAGE_SIZE))


def run_scenario(plugin: str, nodes: int, waypoints: int, runs: int) -> list[tuple]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        conn, child = multiprocessing.Pipe()
        server = multiprocessing.Process(target=serve, args=(nodes, waypoints, folder, child), daemon=True)
        server.start()
        kubeconfig, pods = conn.recv()
        env = dict(os.environ, KUBECONFIG=kubeconfig, HOME=folder)
        print(f"\ncluster: {nodes} nodes, {waypoints} waypoint namespaces, {pods} pods")
        commands = {
            "skew -A": ["skew", "-A", "-o", "json"],
            f"verify -n {NAMESPACE} --skip routing,authorization": ["verify", "-n", NAMESPACE, "--skip",
                                                                     "routing,authorization", "-o", "json"],
            f"verify -n {NAMESPACE}": ["verify", "-n", NAMESPACE, "-o", "json"],
        }
        for name, args in commands.items():
            argv = [plugin, *args]
            timed(argv, env)  # warm-up: page cache, the server's first TLS handshakes
            samples = []
            for _ in range(runs):
                conn.send("clear")
                conn.recv()
                samples.append(timed(argv, env))
            conn.send("log")
            log = conn.recv()
            writes = [r for r in log if r[4]]
            if writes:
                sys.exit(f"{name} sent write requests: {writes[:3]}")
            continued = sum(1 for r in log if r[3])
            # Requests that are not continuation pages must not grow with the cluster: a handful of lists,
            # discovery, gets and execs. Pods need ceil(n / PAGE_SIZE) pages per selector at most.
            first_pages = len(log) - continued
            if continued > 4 * pages_needed(nodes) + 4 or first_pages > 60:
                sys.exit(f"{name}: {len(log)} requests ({continued} continuation pages) for {nodes} nodes: "
                         "requests grow with objects")
            rows.append((f"{nodes}n/{waypoints}w", name, statistics.median(s[0] for s in samples), len(log),
                         continued, max(s[1] for s in samples), {s[2] for s in samples}))
        conn.send("stop")
        server.join(timeout=10)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", metavar="NODES:WAYPOINTS",
                        help="cluster size (repeatable); default 5000:200 and 1000:2000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    plugin = plugin_path()
    scenarios = [tuple(int(n) for n in s.split(":")) for s in args.scenario or ["5000:200", "1000:2000"]]
    rows = []
    for nodes, waypoints in scenarios:
        rows += run_scenario(plugin, nodes, waypoints, args.runs)
    print(f"\n{'cluster':12} {'command':52} {'median s':>9} {'requests':>9} {'(pages)':>8} {'peak RSS MB':>12} exit")
    for cluster, name, wall, requests, pages, rss, codes in rows:
        print(f"{cluster:12} {name:52} {wall:9.2f} {requests:9d} {pages:8d} {rss:12.0f} "
              f"{','.join(map(str, sorted(codes)))}")


if __name__ == "__main__":
    main()
