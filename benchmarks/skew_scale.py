"""`skew -A` on a large simulated cluster, side by side with kubectl fetching the same pods.

Usage: python benchmarks/skew_scale.py [--nodes 5000] [--waypoints 200] [--runs 3]

Starts the simulated API server (HTTPS, bearer token) with a generated cluster: ztunnel and
istio-cni on every node, one waypoint per namespace, unrelated application pods. Then, alternating,
runs `kubectl-waypoint skew -A -o json` and the kubectl commands a person would run to fetch the
same pods (`kubectl get pods -A -l <selector> -o json`, one per data-plane selector plus istiod).
Prints, per tool, the median wall time, API requests per run (from the server's request log) and
peak RSS of the process (wait4), and the ratios. Targets (issue 2): wall-time ratio <= 2.0,
<= 40 API requests, peak RSS <= 200 MB at 5,000 nodes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time

from kubectl_waypoint.discovery import DATA_PLANE_KINDS, ISTIOD_SELECTOR
from measure import kubectl_path, plugin_path, timed

from kubectl_waypoint.sim import SimCluster, generate_large_scenario


def serve(nodes: int, waypoints: int, folder: str, conn) -> None:
    """The simulated cluster, in its own process so that this one stays small (see timed)."""
    started = time.perf_counter()
    scenario = generate_large_scenario(nodes=nodes, waypoint_namespaces=waypoints)
    generated = time.perf_counter() - started
    pods = sum(1 for o in scenario.objects if o.get("kind") == "Pod")
    with SimCluster(scenario, tls=True) as sim:
        conn.send((sim.write_kubeconfig(os.path.join(folder, "kubeconfig")), pods, generated))
        while True:
            command = conn.recv()
            if command == "clear":
                sim.clear_requests()
                conn.send(None)
            elif command == "count":
                conn.send((len(sim.requests), len(sim.writes())))
            else:
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--waypoints", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    kubectl = kubectl_path()
    plugin = plugin_path()

    with tempfile.TemporaryDirectory() as folder:
        conn, child_conn = multiprocessing.Pipe()
        server = multiprocessing.Process(target=serve, args=(args.nodes, args.waypoints, folder, child_conn), daemon=True)
        server.start()
        kubeconfig, pods, generated = conn.recv()
        env = dict(os.environ, KUBECONFIG=kubeconfig, HOME=folder)
        ours = [plugin, "skew", "-A", "-o", "json"]
        selectors = [ISTIOD_SELECTOR] + [kind.selector for kind in DATA_PLANE_KINDS]
        theirs = [[kubectl, "get", "pods", "-A", "-l", sel, "-o", "json", "--cache-dir", os.path.join(folder, "cache")]
                  for sel in selectors]
        print(f"cluster: {args.nodes} nodes, {args.waypoints} waypoint namespaces, {pods} pods "
              f"(generated in {generated:.1f}s)")

        # One warm-up each (kubectl fills its discovery cache, the OS its page cache).
        timed(ours, env)
        for argv in theirs:
            timed(argv, env)

        def requests_during(run) -> tuple:
            conn.send("clear")
            conn.recv()
            measured = run()
            conn.send("count")
            count, writes = conn.recv()
            assert writes == 0, "a benchmark run sent a write request"
            return measured, count

        def kubectl_run() -> tuple[float, float, int]:
            total, peak = 0.0, 0.0
            for argv in theirs:
                wall, rss, _ = timed(argv, env)
                total, peak = total + wall, max(peak, rss)
            return total, peak, 0

        rows = {"kubectl-waypoint skew -A": (lambda: timed(ours, env)),
                f"kubectl get pods x{len(theirs)}": kubectl_run}
        samples = {name: [] for name in rows}
        requests = {}
        for _ in range(args.runs):
            for name, run in rows.items():
                (wall, rss, _), requests[name] = requests_during(run)
                samples[name].append((wall, rss))
        conn.send("stop")
        server.join(timeout=10)

    print(f"{'tool':32} {'median wall s':>14} {'API requests':>13} {'peak RSS MB':>12}")
    medians = {}
    for name, values in samples.items():
        medians[name] = statistics.median(w for w, _ in values)
        print(f"{name:32} {medians[name]:14.2f} {requests[name]:13d} {max(r for _, r in values):12.0f}")
    ours_name, theirs_name = list(rows)
    print(f"wall-time ratio (ours / kubectl): {medians[ours_name] / medians[theirs_name]:.2f}")


if __name__ == "__main__":
    main()
