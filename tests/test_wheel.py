"""The package as users install it (`pip install .`, not editable): every data file is in the wheel.

The wheel is built from a copy of the source tree (pip builds in-tree and would leave build/lib
behind), installed with `pip install --no-deps --target` (the dependencies are this venv's), and
run from there with the source tree out of sys.path. CI (.ci/run) also installs it with its
dependencies into a fresh virtual environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "kubectl_waypoint"
NOT_DATA = (".py", ".pyc")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> str:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(REPO, name), source / name)
    shutil.copytree(os.path.join(REPO, PACKAGE), source / PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_build.py"))
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = [str(out / name) for name in os.listdir(out) if name.endswith(".whl")]
    return built


def data_files_in_source() -> set[str]:
    found = set()
    for folder, dirs, files in os.walk(os.path.join(REPO, PACKAGE)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if not name.endswith(NOT_DATA):
                found.add(os.path.relpath(os.path.join(folder, name), REPO).replace(os.sep, "/"))
    return found


def test_the_wheel_holds_every_data_file_of_the_package(wheel):
    expected = data_files_in_source()
    assert {"kubectl_waypoint/checks/catalogue.yaml", "kubectl_waypoint/checks/checks.md"} <= expected
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    assert expected - shipped == set(), "package data missing from the wheel: add it to pyproject.toml"


def test_the_installed_wheel_runs_demo_checks_and_explain(wheel, tmp_path):
    target = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # The installed copy first on the path; the working directory is not the source tree.
    runner = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import kubectl_waypoint.__main__ as m; "
              "print(m.__file__, file=sys.stderr); sys.exit(m.main(sys.argv[1:]))")

    def run(*args: str) -> subprocess.CompletedProcess:
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return subprocess.run([sys.executable, "-c", runner, str(target), *args], capture_output=True, text=True,
                              cwd=tmp_path, env=environment, timeout=300)

    demo = run("demo", "-o", "json")
    assert demo.returncode == 0, demo.stderr
    assert demo.stderr.splitlines()[0].startswith(str(target)), "ran the source tree, not the wheel"
    assert '"kind": "DemoReport"' in demo.stdout
    assert run("explain", "waypoint-sync").stdout.startswith("Proxy sync status")
    assert "waypoint-sync" in run("checks").stdout
