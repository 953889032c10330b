"""What the benchmark scripts share: finding the tools, and timing one process honestly."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time


def plugin_path() -> str:
    """kubectl-waypoint of this environment (the one the benchmark imports), else PATH's."""
    found = shutil.which("kubectl-waypoint", path=os.path.dirname(sys.executable)) or shutil.which("kubectl-waypoint")
    if found is None:
        sys.exit("kubectl-waypoint is not installed in this environment (pip install -e .)")
    return found


def kubectl_path() -> str:
    """kubectl itself: where PATH's is the Google Cloud SDK dispatcher (it prints `-dispatcher`), the
    versioned kubectl beside it, since the dispatcher adds its own start-up and a `GET /version`."""
    binary = shutil.which("kubectl") or sys.exit("kubectl is not on PATH")
    version = subprocess.run([binary, "version", "--client"], capture_output=True, text=True).stdout
    if "-dispatcher" not in version:
        return binary
    folder = os.path.dirname(os.path.realpath(binary))
    for candidate in (os.path.join(folder, "kubectl.1.32"), *sorted(glob.glob(os.path.join(folder, "kubectl.1.*")))):
        if os.access(candidate, os.X_OK):
            return candidate
    return binary


def timed(argv: list[str], env: dict) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and exit code of one process (exit codes 0, 1 and 4 are results).

    Linux carries the pre-exec high-water mark into ru_maxrss, so the spawning process must stay
    small: the benchmarks run the simulated cluster in a separate process.
    """
    with tempfile.TemporaryFile() as errors:
        actions = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0), (os.POSIX_SPAWN_DUP2, errors.fileno(), 2)]
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        elapsed = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1, 4):
            errors.seek(0)
            sys.exit(f"{' '.join(argv)} failed with exit {code}: {errors.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024, code
