"""Where users wait, side by side with kubectl on the same simulated cluster: ratios, not absolute times.

Usage: python benchmarks/kubectl_ratio.py [--runs 11] [--executable build/dist/kubectl-waypoint | --this-install]

Each pair runs alternately (A B A B ...) as fresh processes after one warm-up each, and the median
of the per-pair ratios A/B is printed with both medians. The plugin is this checkout installed from
a wheel, as `pip install .` installs it for a user, into a scratch environment (--this-install
measures this environment's own, e.g. a developer's editable install, which pays setuptools' import
hook at every start); or the single executable given with --executable (then it is also what
kubectl runs as `kubectl waypoint`, through a PATH that holds it first). kubectl is the real binary: where PATH's
`kubectl` is the Google Cloud SDK dispatcher, the versioned kubectl beside it (the dispatcher adds
its own start-up and a request). Targets are issue 14's:

  completion through kubectl      <= 3.0x  `kubectl __complete get pods -n ''`
  --help, version                 <= 1.5x  `kubectl --help`
  skew (3-node Bookinfo)          <= 1.2x  the three `kubectl get` it replaces
  verify -n bookinfo, no routing  <= 1.5x  the same reads done by kubectl

and, beyond the issue, skew against a cluster that answers each request after --latency-ms (20 ms:
a round trip and a busy server), where the number of requests in a row counts, not start-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from measure import kubectl_path, plugin_path, wheel_install

from kubectl_waypoint.sim import SimCluster


def wall(commands: list[list[str]], env: dict) -> float:
    """Seconds for the commands run one after another (what a user running them would wait)."""
    start = time.perf_counter()
    for argv in commands:
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def pair(a: list[list[str]], b: list[list[str]], env: dict, runs: int) -> tuple[float, float, float]:
    wall(a, env), wall(b, env)  # warm-up: page cache, kubectl's discovery cache
    times_a, times_b, ratios = [], [], []
    for _ in range(runs):
        ta, tb = wall(a, env), wall(b, env)
        times_a.append(ta), times_b.append(tb), ratios.append(ta / tb)
    return statistics.median(times_a), statistics.median(times_b), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--executable", help="the single executable to measure instead of the source install")
    choice.add_argument("--this-install", action="store_true",
                        help="measure this environment's kubectl-waypoint, not a wheel of the checkout")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="each request's wait in the last case")
    args = parser.parse_args()
    kubectl = kubectl_path()
    with tempfile.TemporaryDirectory() as folder, SimCluster("bookinfo") as sim, SimCluster("bookinfo") as slow:
        slow.add_fault(method=None, path=".*", status=None, delay=args.latency_ms / 1000)
        if args.executable:
            plugin = os.path.abspath(args.executable)
        else:
            plugin = plugin_path() if args.this_install else wheel_install(os.path.join(folder, "wheel"))
        bin_dir = os.path.join(folder, "bin")
        os.mkdir(bin_dir)
        for name in ("kubectl-waypoint", "kubectl_complete-waypoint"):  # what `kubectl waypoint` finds on PATH
            os.symlink(plugin if args.executable or name == "kubectl-waypoint" else
                       shutil.which(name, path=os.path.dirname(plugin)), os.path.join(bin_dir, name))
        kubeconfig = sim.write_kubeconfig(os.path.join(folder, "kubeconfig"), namespace="bookinfo")
        slow_kubeconfig = slow.write_kubeconfig(os.path.join(folder, "slow-kubeconfig"), namespace="bookinfo")
        # Bytecode is cached as pip caches it when installing a wheel; without this a source checkout
        # under PYTHONDONTWRITEBYTECODE compiles the package anew on every run (about 25 ms).
        env = {**os.environ, "KUBECONFIG": kubeconfig, "HOME": folder,
               "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        ours = os.path.join(bin_dir, "kubectl-waypoint")
        cache = ["--cache-dir", os.path.join(folder, "cache")]
        reads = [["get", "pods", "-A", "-l", selector, "-o", "json"]
                 for selector in ("app=istiod", "app=ztunnel", "k8s-app=istio-cni-node")]
        verify_reads = reads + [["get", "namespace", "bookinfo", "-o", "json"],
                                ["get", "deployments", "-A", "-l", "app=istiod", "-o", "json"],
                                ["get", "gateways.gateway.networking.k8s.io", "-A", "-o", "json"],
                                ["get", "services", "-n", "bookinfo", "-o", "json"],
                                ["get", "mutatingwebhookconfigurations", "-l", "istio.io/tag", "-o", "json"]]
        cases = [
            ("completion -n ''", [[kubectl, "__complete", "waypoint", "verify", "-n", ""]],
             [[kubectl, "__complete", "get", "pods", "-n", ""]], 3.0),
            ("completion --context ''", [[kubectl, "__complete", "waypoint", "skew", "--context", ""]],
             [[kubectl, "__complete", "get", "pods", "-n", ""]], 3.0),
            ("completion --route ''", [[kubectl, "__complete", "waypoint", "probe", "--route", ""]],
             [[kubectl, "__complete", "get", "pods", "-n", ""]], 3.0),
            ("--help", [[ours, "--help"]], [[kubectl, "--help"]], 1.5),
            ("version", [[ours, "version"]], [[kubectl, "--help"]], 1.5),
            ("skew", [[ours, "skew"]], [[kubectl, *cache, *r] for r in reads], 1.2),
            ("verify, no routing", [[ours, "verify", "-n", "bookinfo", "--skip", "routing,authorization"]],
             [[kubectl, *cache, *r] for r in verify_reads], 1.5),
            (f"skew, {args.latency_ms:g} ms a request", [[ours, "skew", "--kubeconfig", slow_kubeconfig]],
             [[kubectl, *cache, "--kubeconfig", slow_kubeconfig, *r] for r in reads], 1.2),
        ]
        print(f"plugin: {plugin}\nkubectl: {kubectl}\nmedians of {args.runs} alternating runs\n")
        print(f"{'case':<26} {'kubectl-waypoint':>17} {'kubectl':>9} {'ratio':>7} {'target':>7}")
        for name, a, b, target in cases:
            ta, tb, ratio = pair(a, b, env, args.runs)
            verdict = "ok" if ratio <= target else "over"
            print(f"{name:<26} {ta:>16.3f}s {tb:>8.3f}s {ratio:>6.2f}x {target:>6.1f}x  {verdict}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
