"""Build the single-file kubectl-waypoint executable and its release archive.

    python build/build.py            # -> build/dist/kubectl-waypoint and build/dist/kubectl-waypoint_<tag>_<os>_<arch>.tar.gz

Run it with the Python environment the plugin is installed in, plus PyInstaller
(`pip install -e '.[build]'`). The same command builds every platform natively (Windows gets
kubectl-waypoint.exe in a .zip). Two builds of one commit on one platform are byte-identical:
PYTHONHASHSEED and SOURCE_DATE_EPOCH (the commit time) are fixed, and the sources are staged
from the package folder with the commit stamped in `_build.py`, never written into the tree.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from archive import Member, write_archive  # noqa: E402  (build/ is not a package)

NAME = "kubectl-waypoint"
KREW_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
KREW_OS = {"linux": "linux", "darwin": "darwin", "win32": "windows"}


def krew_platform() -> tuple[str, str]:
    """This machine as Krew names it: (os, arch)."""
    machine = platform.machine().lower()
    if sys.platform not in KREW_OS or machine not in KREW_ARCH:
        raise SystemExit(f"build: no release is made for {sys.platform}/{machine}")
    return KREW_OS[sys.platform], KREW_ARCH[machine]


def package_version() -> str:
    namespace: dict = {}
    with open(os.path.join(REPO, "kubectl_waypoint", "__init__.py"), encoding="utf-8") as stream:
        exec(compile(stream.read(), "__init__.py", "exec"), namespace)
    return namespace["__version__"]


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, check=False)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def commit_stamp() -> str:
    """The commit, marked -dirty when tracked files differ from it; WAYPOINT_COMMIT outside git.

    A release must say what it was built from: without git and without WAYPOINT_COMMIT there is
    no build, rather than an executable that says "unknown".
    """
    commit = _git("rev-parse", "--short=12", "HEAD")
    if not commit:
        commit = os.environ.get("WAYPOINT_COMMIT", "").strip()
        if not commit:
            raise SystemExit("build: cannot tell the commit (no git checkout here); set WAYPOINT_COMMIT")
        return commit
    return commit + ("-dirty" if _git("status", "--porcelain", "--untracked-files=no") else "")


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH if set, else the commit time: one commit, one timestamp everywhere."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    committed = _git("log", "-1", "--format=%ct")
    return int(committed) if committed else 315532800


def stage_sources(work: str, commit: str) -> str:
    """Copy the package into work/src and stamp the commit there (the tree stays untouched)."""
    staged = os.path.join(work, "src")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(os.path.join(REPO, "kubectl_waypoint"), os.path.join(staged, "kubectl_waypoint"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_build.py", "_help_pages.py"))
    with open(os.path.join(staged, "kubectl_waypoint", "_build.py"), "w", encoding="utf-8") as stream:
        stream.write(f'"""Written by build/build.py."""\n\nCOMMIT = {commit!r}\n')
    # click's help pages at every width, rendered from the staged code (kubectl_waypoint/help_pages.py).
    pages = os.path.join(staged, "kubectl_waypoint", "_help_pages.py")
    render = f"from kubectl_waypoint.help_pages import write_module; write_module({pages!r})"
    subprocess.run([sys.executable, "-c", render], env=dict(os.environ, PYTHONPATH=staged), check=True, cwd=staged)
    return staged


def run_pyinstaller(staged: str, work: str, dist: str, epoch: int) -> str:
    env = dict(os.environ, PYTHONHASHSEED="0", SOURCE_DATE_EPOCH=str(epoch), WAYPOINT_STAGED_SOURCES=staged)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
               "--distpath", dist, "--workpath", os.path.join(work, "pyinstaller"),
               os.path.join(HERE, f"{NAME}.spec")]
    subprocess.run(command, env=env, check=True, cwd=work)
    executable = os.path.join(dist, NAME + (".exe" if sys.platform == "win32" else ""))
    if not os.path.isfile(executable):
        raise SystemExit(f"build: PyInstaller did not produce {executable}")
    return executable


def archive_name(tag: str, os_name: str, arch: str) -> str:
    return f"{NAME}_{tag}_{os_name}_{arch}" + (".zip" if os_name == "windows" else ".tar.gz")


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build(dist: str, work: str) -> tuple[str, str]:
    """Build the executable and its archive into `dist`; returns both paths."""
    dist, work = os.path.abspath(dist), os.path.abspath(work)
    os.makedirs(dist, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    os_name, arch = krew_platform()
    epoch = source_date_epoch()
    staged = stage_sources(work, commit_stamp())
    executable = run_pyinstaller(staged, work, dist, epoch)
    archive = os.path.join(dist, archive_name("v" + package_version(), os_name, arch))
    write_archive(archive, [Member(os.path.basename(executable), executable, 0o755),
                            Member("LICENSE", os.path.join(REPO, "LICENSE"), 0o644)], epoch)
    with open(archive + ".sha256", "w", encoding="utf-8") as stream:
        stream.write(f"{sha256_of(archive)}  {os.path.basename(archive)}\n")
    return executable, archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the one-file kubectl-waypoint and its release archive.")
    parser.add_argument("--dist", default=os.path.join(HERE, "dist"), help="where the results go (build/dist)")
    parser.add_argument("--work", default=os.path.join(HERE, "work"), help="scratch space (build/work)")
    args = parser.parse_args(argv)
    executable, archive = build(args.dist, args.work)
    for path in (executable, archive):
        print(f"{sha256_of(path)}  {path}  ({os.path.getsize(path) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
