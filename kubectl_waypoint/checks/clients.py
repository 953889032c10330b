"""Probe clients that can do the job: the pod's container must have curl, asked once per pod.

Many application images have no curl (Bookinfo's productpage and details among them), and a probe
that cannot start says nothing about routing. So before a pod is chosen its container is asked
`curl --version` (an argument vector, never a shell); the answer is kept for the whole run. With
no pod that can run curl, the check is inconclusive and says how to deploy Istio's curl sample.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ..kube.client import ExecFailed, ExecutableMissing, NotFound, PermissionDenied

CURL_VERSION_ARGV = ["curl", "--version"]
# Istio's own request source (samples/curl/curl.yaml in istio/istio), as the Istio docs link it.
CURL_SAMPLE_URL = "https://raw.githubusercontent.com/istio/istio/release-1.28/samples/curl/curl.yaml"
CURL_CHECK_TIMEOUT_S = 30.0


def deploy_curl_command(namespace: str) -> str:
    """The command that gives `namespace` a client with curl (enrolled when the namespace is ambient)."""
    return f"kubectl apply -n {namespace} -f {CURL_SAMPLE_URL}"


class CurlCapability:
    """Whether each client container runs curl; one exec per container per run, safe across threads."""

    def __init__(self, cluster):
        self.cluster = cluster
        self._known: dict[tuple[str, str, str], str | None] = {}
        self._asking: dict[tuple[str, str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def problem(self, client) -> str | None:
        """None when the client's container answers `curl --version`; else why it cannot probe."""
        key = (client.namespace, client.pod, client.container)
        with self._lock:
            asking = self._asking.setdefault(key, threading.Lock())
        with asking:  # a second probe wanting the same pod waits for the first answer
            if key not in self._known:
                self._known[key] = self._ask(client)
            return self._known[key]

    def _ask(self, client) -> str | None:
        where = f'container "{client.container}" of pod {client.namespace}/{client.pod}'
        try:
            result = self.cluster.exec(client.namespace, client.pod, client.container, CURL_VERSION_ARGV,
                                       timeout=CURL_CHECK_TIMEOUT_S)
        except PermissionDenied:
            raise  # the check cannot run anywhere: inconclusive, naming the permission
        except ExecutableMissing:
            return f"{where} has no curl"
        except NotFound:
            return f"pod {client.namespace}/{client.pod} is gone"
        except ExecFailed as exc:
            return f"{where} could not be asked for curl: {exc.message}"
        if result.returncode != 0 or not result.stdout.startswith(b"curl "):
            return f"{where} has no working curl (curl --version exited {result.returncode})"
        return None


def first_with_curl(capability: CurlCapability, clients: Iterable, limit: int,
                    ) -> tuple[list, list[str]]:
    """Up to `limit` of `clients` (in order) whose container runs curl, and what was wrong with the others."""
    usable, problems = [], []
    for client in clients:
        problem = capability.problem(client)
        if problem is None:
            usable.append(client)
            if len(usable) == limit:
                break
        else:
            problems.append(problem)
    return usable, problems


def no_client_message(description: str, namespace: str | None, problems: list[str]) -> str:
    """Why no client could probe, and the command that deploys one that can (where the sample would fit)."""
    seen = f" ({'; '.join(problems[:3])}{'; ...' if len(problems) > 3 else ''})" if problems else ""
    if namespace is None:
        return f"no {description} with curl was found{seen}; name one in --probe-config"
    return (f"no {description} with curl was found{seen}; deploy Istio's curl sample: "
            f"{deploy_curl_command(namespace)}, or pass --client")
