"""Where kubectl looks for its files: the home folder, and the kubeconfig files it reads.

Apart from kube/config.py, which imports YAML, and outside kube/, so that completion's cache
(completion_cache.py) names the very files the loader reads without loading the client's layers.
"""

from __future__ import annotations

import os
from typing import Mapping


def home_folder(environ: Mapping[str, str]) -> str:
    """$HOME, else the account's home (client-go's homedir.HomeDir on POSIX)."""
    return environ.get("HOME") or os.path.expanduser("~")


def kubeconfig_paths(explicit: str | None, environ: Mapping[str, str], home: str | None = None) -> list[str]:
    """The files kubectl would read: --kubeconfig alone, else KUBECONFIG's entries, else ~/.kube/config.

    A KUBECONFIG of separators only names no file at all (client-go skips empty entries), not the
    default one.
    """
    if explicit:
        return [explicit]
    listed = environ.get("KUBECONFIG", "")
    if listed:
        return list(dict.fromkeys(path for path in listed.split(os.pathsep) if path))
    return [os.path.join(home or home_folder(environ), ".kube", "config")]
