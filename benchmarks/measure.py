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


def wheel_install(folder: str) -> str:
    """kubectl-waypoint installed from a wheel of this checkout, as `pip install .` installs it for a
    user, into a fresh virtual environment in `folder` that borrows this one's dependencies.

    An editable install (`pip install -e .`) is a developer's: setuptools' import hook behind it
    costs every start about 10 ms (it imports pathlib), which a user's install never pays.
    """
    import sysconfig

    repo, source = os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.path.join(folder, "source")
    # Built from a copy: pip builds in the tree and would leave build/lib behind (tests/test_wheel.py too).
    shutil.copytree(os.path.join(repo, "kubectl_waypoint"), os.path.join(source, "kubectl_waypoint"),
                    ignore=shutil.ignore_patterns("__pycache__", "_build.py"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(repo, name), source)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", folder, source],
                           stdout=subprocess.DEVNULL)
    if built.returncode != 0:  # pip said why on stderr
        sys.exit("could not build a wheel of the checkout (pip fetches setuptools to build it); "
                 "measure this environment's install with --this-install")
    (wheel,) = glob.glob(os.path.join(folder, "kubectl_waypoint-*.whl"))
    venv = os.path.join(folder, "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], check=True)
    site_packages = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(site_packages, "borrowed-dependencies.pth"), "w") as stream:
        stream.write(sysconfig.get_paths()["purelib"] + "\n")  # a path only: its .pth files are not run
    return os.path.join(venv, "bin", "kubectl-waypoint")


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
