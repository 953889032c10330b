"""`kubectl waypoint watch` over a simulated 5-minute upgrade: API requests made, and memory over an hour.

Usage: python benchmarks/watch_bench.py [--minutes 5] [--speed 10] [--hours 1]

1. Requests. The simulated bookinfo cluster plays a whole upgrade (istiod, istio-cni, ztunnel node
   by node, the waypoint with a 10 s outage) stretched to --minutes of simulated time and played
   --speed times faster; `watch --target-version` follows it in-process. Prints the API requests
   the simulated server saw by verb during the watch, next to what a polling loop would need
   (every followed resource listed once per --interval): watch connections, not repeated lists.
2. Memory. The pure timeline (kubectl_waypoint/timeline.py) is fed --hours of events: ten pod
   updates a second that change nothing it reports, a pod flapping ready/not ready every minute,
   and one probe result a second on three routes. tracemalloc's current size is printed every
   tenth of the run: it must stay flat (events are capped, request outcomes kept as runs).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import tempfile
import time
import tracemalloc
from collections import Counter

from kubectl_waypoint.__main__ import main as cli
from kubectl_waypoint.sim import SimCluster
from kubectl_waypoint.sim.timeline import TO_TAG, upgrade_timeline
from kubectl_waypoint.timeline import UpgradeTimeline
from kubectl_waypoint.watch import mesh_sources


def requests_over_an_upgrade(minutes: float, speed: float) -> None:
    with tempfile.TemporaryDirectory() as folder, SimCluster("bookinfo") as sim:
        kubeconfig = sim.write_kubeconfig(os.path.join(folder, "kubeconfig"), namespace="bookinfo")
        unit = upgrade_timeline(SimCluster("bookinfo"), pace=1.0).duration
        pace = minutes * 60 / unit
        timeline = upgrade_timeline(sim, pace=pace, waypoint_outage=10.0)
        sources = len(mesh_sources("bookinfo"))
        timeline.play_when(lambda: timeline.watchers() >= sources, speed=speed)
        interval = 1.0 / speed  # a request a simulated second
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the WatchReport; only the counts matter here
            code = cli(["watch", "--kubeconfig", kubeconfig, "--target-version", TO_TAG, "--interval", f"{interval:g}s",
                        "--timeout", f"{minutes * 60 / speed + 60:g}s", "-o", "json"])
        elapsed = time.perf_counter() - started
        timeline.stop()
        verbs = Counter(f"{r.verb} {r.resource}" for r in sim.requests)
    simulated = elapsed * speed
    print(f"\nwatch exit {code}; {elapsed:.1f}s real, {simulated / 60:.1f} simulated minutes (speed {speed:g})")
    for verb, count in sorted(verbs.items()):
        print(f"  {count:6d}  {verb}")
    watches = sum(n for v, n in verbs.items() if v.startswith("watch"))
    print(f"watch connections: {watches} for {sources} followed resources")
    print(f"a 1 s polling loop of lists would have made {int(simulated) * sources} list requests instead")


def memory_over(hours: float) -> None:
    model = UpgradeTimeline(None, datetime.datetime.now(datetime.timezone.utc))
    pods = [{"metadata": {"name": f"ztunnel-{i}", "namespace": "istio-system", "labels": {"app": "ztunnel"}},
             "spec": {"containers": [{"image": "x/ztunnel:1.28.6"}], "nodeName": f"node-{i}"},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}} for i in range(50)]
    for pod in pods:
        model.observe("ADDED", "pods", pod, 0.0, initial=True)
    flapping = {**pods[0], "status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    seconds = int(hours * 3600)
    tracemalloc.start()
    print(f"\nmemory of the timeline over {hours:g} h of events (tracemalloc, current):")
    for second in range(seconds):
        for tick in range(10):
            model.observe("MODIFIED", "pods", pods[(second * 10 + tick) % len(pods)], second + tick / 10)
        if second % 60 == 0:
            model.observe("MODIFIED", "pods", flapping if second % 120 == 0 else pods[0], second)
        for route in ("a -> b:80", "a -> c:80", "a -> d:80"):
            model.request(route, second % 600 != 0 or route != "a -> b:80", float(second))
        if second % (seconds // 10) == 0 or second == seconds - 1:
            current, _ = tracemalloc.get_traced_memory()
            print(f"  {second / 3600:5.2f} h  {current / 1024:8.0f} KiB  ({len(model.events)} events kept, "
                  f"{model.events_left_out} left out)")
    tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    requests_over_an_upgrade(args.minutes, args.speed)
    memory_over(args.hours)


if __name__ == "__main__":
    main()
