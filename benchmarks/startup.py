"""Start-up time and size of the single executable, side by side with the source install.

Usage: python benchmarks/startup.py [--runs 9] [--executable build/dist/kubectl-waypoint]

Without --executable it builds twice with build/build.py (into temporary folders) and checks that
the two builds are byte-identical. Then, for the built file and for the source install (the
`kubectl-waypoint` console script beside this Python), it runs fresh processes and prints the
median wall time of `--help`, `version` and `skew` against the simulated Bookinfo cluster (HTTPS,
bearer token), and the sizes. Targets (issue 5): --help and version <= 0.15 s, skew <= 1.0 s,
file <= 25 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from kubectl_waypoint.sim import SimCluster

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = {"--help": 0.15, "version": 0.15, "skew": 1.0}


def sha256(path: str) -> str:
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def build_twice(scratch: str) -> tuple[str, list[str]]:
    """Two builds of the working tree under `scratch`; returns the first executable and lines to report."""
    lines, results = [], []
    for attempt in (1, 2):
        folder = os.path.join(scratch, f"build{attempt}")
        started = time.perf_counter()
        subprocess.run([sys.executable, os.path.join(REPO, "build", "build.py"), "--dist", os.path.join(folder, "dist"),
                        "--work", os.path.join(folder, "work")], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        dist = os.path.join(folder, "dist")
        executable = os.path.join(dist, "kubectl-waypoint")
        archive = next(os.path.join(dist, n) for n in sorted(os.listdir(dist)) if n.endswith((".tar.gz", ".zip")))
        results.append((executable, sha256(executable), sha256(archive)))
        lines.append(f"build {attempt}: {elapsed:.0f} s, executable sha256 {results[-1][1][:16]}..., "
                     f"archive sha256 {results[-1][2][:16]}...")
    identical = results[0][1:] == results[1][1:]
    lines.append("two consecutive builds: " + ("identical" if identical else "DIFFERENT"))
    return results[0][0], lines


def median_seconds(argv: list[str], runs: int) -> float:
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # warm the page cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# CArchive typecodes the bootloader writes into its temporary folder at every start; 'a' entries
# are the extension modules the run-time hook writes on first import (build/lazy.py).
UNPACKED_AT_START = ("b", "x", "Z")


def largest_parts(executable: str, count: int = 6) -> list[str]:
    """The biggest entries of the one-file archive: where the megabytes are, which are compressed,
    and how much the bootloader writes at every start against what waits for a first import."""
    from PyInstaller.archive.readers import CArchiveReader

    entries = CArchiveReader(executable).toc.items()
    ranked = sorted(entries, key=lambda item: -item[1][1])[:count]
    lines = [f"  {stored / 1e6:5.1f} MB  {name}" + (f" (compressed from {unpacked / 1e6:.1f} MB)" if compressed else "")
             + (" (on first import)" if kind == "a" else "")
             for name, (_offset, stored, unpacked, compressed, kind) in ranked]
    at_start = sum(unpacked for _name, (_offset, _stored, unpacked, _compressed, kind) in entries
                   if kind in UNPACKED_AT_START)
    lazily = sum(unpacked for _name, (_offset, _stored, unpacked, _compressed, kind) in entries if kind == "a")
    return [*lines, f"  unpacked at every start: {at_start / 1e6:.1f} MB; on first import of their module: "
                    f"{lazily / 1e6:.1f} MB"]


def source_install_bytes() -> int:
    """The installed files of kubectl-waypoint and every distribution it requires (not Python itself)."""
    seen: set[str] = set()
    pending = ["kubectl-waypoint"]
    total = 0
    while pending:
        name = re.split(r"[\s;<>=!~\[(]", pending.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        total += sum(os.path.getsize(p) for f in dist.files or [] if os.path.isfile(p := str(f.locate())))
        pending.extend(r for r in dist.requires or [] if "extra ==" not in r)
    package = os.path.join(REPO, "kubectl_waypoint")  # an editable install lists only its finder
    total += sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(package) for f in files)
    return total


def measure(executable: str, runs: int, report: list[str]) -> None:
    script = os.path.join(os.path.dirname(sys.executable), "kubectl-waypoint")
    source = [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "kubectl_waypoint"]
    rows = []
    with tempfile.TemporaryDirectory() as folder, SimCluster("bookinfo", tls=True) as sim:
        kubeconfig = sim.write_kubeconfig(os.path.join(folder, "kubeconfig"))
        for label, extra in (("--help", ["--help"]), ("version", ["version"]),
                             ("skew", ["skew", "--kubeconfig", kubeconfig])):
            frozen = median_seconds([executable, *extra], runs)
            installed = median_seconds([*source, *extra], runs)
            rows.append((f"{label} median wall time", f"{frozen:.3f} s", f"{installed:.3f} s", f"<= {TARGETS[label]} s",
                         "met" if frozen <= TARGETS[label] else "missed"))
    size = os.path.getsize(executable) / 1e6
    rows.append(("size", f"{size:.2f} MB (one file)", f"{source_install_bytes() / 1e6:.1f} MB (+ Python)", "<= 25 MB",
                 "met" if size <= 25 else "missed"))
    print(*report, sep="\n")
    print(f"\n{runs} fresh processes each, medians; executable {executable}\n")
    header = ("measure", "single executable", "source install", "target", "single executable")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    print("\nlargest parts of the single executable (PYZ.pyz holds the Python modules):")
    print(*largest_parts(executable), sep="\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--executable", help="measure this file instead of building twice")
    args = parser.parse_args()
    if args.executable:
        measure(args.executable, args.runs, [])
        return 0
    with tempfile.TemporaryDirectory(prefix="waypoint-builds-") as scratch:
        executable, report = build_twice(scratch)
        measure(executable, args.runs, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
