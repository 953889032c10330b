"""The plugin's version and the commit it was built from (stamped into frozen builds)."""

from __future__ import annotations

import sys

from . import __version__


def build_info() -> dict:
    try:
        from ._build import COMMIT  # written by build/build.sh into the frozen executable
    except ImportError:
        COMMIT = "unknown (source install)"
    return {
        "apiVersion": "kubectl-waypoint/v1",
        "kind": "Version",
        "version": f"v{__version__}",
        "commit": COMMIT,
        # What platform.python_version() parses out of sys.version, without importing platform.
        "python": f"Python {sys.version.split()[0]}",
    }


def version_line(info: dict) -> str:
    return f"kubectl-waypoint {info['version']} (commit {info['commit']}, {info['python']})\n"
