"""Read-only access to the API server through the `kubernetes` client, as raw JSON.

Raw requests skip the generated model classes (faster, and we only read a few fields). Every
failure becomes a typed error with kubectl-like wording; nothing here prints or exits.
`kubernetes` is imported lazily so that `--help` and `version` never pay for it.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass
from http.client import HTTPException, IncompleteRead, RemoteDisconnected
from typing import TYPE_CHECKING, Callable, Iterator
from urllib.parse import quote, urlencode, urlparse

from .. import __version__, logs
from ..errors import BadInput, ClusterUnavailable, WaypointError
from .resources import Resource

if TYPE_CHECKING:
    from .config import KubeTarget
    from .transport import Transport

log = logs.getLogger(__name__)

PAGE_SIZE = 500  # kubectl's --chunk-size default
MAX_ATTEMPTS = 5  # for 429 and 5xx answers to reads
TOGETHER_LANES = 4  # reads made at once (Cluster.together): skew's critical path is 3 requests
MAX_RETRY_AFTER_S = 10.0
LIST_RESTARTS = 2  # an expired continue token restarts the list this often at most
WRONG_HOST = "certificate is not valid for this host"


# A connection the server (or something between) cut before the whole answer came: a read is retried.
DROPPED = (RemoteDisconnected, ConnectionResetError, ConnectionAbortedError, BrokenPipeError, IncompleteRead)


class PermissionDenied(ClusterUnavailable):
    """RBAC forbids a read the command needs."""

    def __init__(self, verb: str, resource: Resource, namespace: str | None, subresource: str = ""):
        what = resource.rbac_name() + (f"/{subresource}" if subresource else "")
        where = f'in namespace "{namespace}"' if namespace else "at the cluster scope"
        super().__init__(
            f"permission denied: you cannot {verb} {what} {where}; "
            "ask your cluster admin for the kubectl-waypoint ClusterRole shown in the README"
        )
        self.verb, self.resource, self.namespace, self.subresource = verb, resource, namespace, subresource


class ResourceNotInstalled(WaypointError):
    """The API group (a CRD such as Gateway API or Sail) is not served by this cluster."""

    def __init__(self, resource: Resource):
        super().__init__(f"the API {resource.group_version} ({resource.plural}) is not installed in this cluster")
        self.resource = resource


class ContinueExpired(WaypointError):
    """A paged list's continue token is too old (410 Gone); the list must start again."""


class NotFound(WaypointError):
    """A named object does not exist."""


class ExecFailed(WaypointError):
    """The exec session could not run the command at all (as opposed to a non-zero exit)."""


class ExecutableMissing(ExecFailed):
    """The container has no such program (the API server's InternalError on exec)."""


@dataclass
class ExecResult:
    """Shaped like subprocess.CompletedProcess."""

    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes


class Cluster:
    """One API server, as selected by the kubeconfig flags; counts the requests it makes."""

    def __init__(self, target: "KubeTarget", sleep: Callable[[float], None] = time.sleep):
        self.target = target
        self.request_count = 0
        self._sleep = sleep
        self._transport_instance = None
        self._served: dict[str, set[str]] = {}
        self._lock = threading.Lock()  # the count and the transport, for reads made together
        self._together = threading.local()  # .given_up: an Event of the reads made together with this one

    # -- plumbing ---------------------------------------------------------------------------

    def _transport(self) -> "Transport":
        with self._lock:
            if self._transport_instance is None:
                from .transport import Transport

                self._transport_instance = Transport(self.target.connection, self.target.environ,
                                                     user_agent=f"kubectl-waypoint/{__version__}")
            return self._transport_instance

    def _count_request(self) -> None:
        with self._lock:  # reads made together, and probes' exec sessions, count at once
            self.request_count += 1

    def _may_retry(self) -> bool:
        """No retry once a read made together with this one has given up: the run fails anyway."""
        given_up = getattr(self._together, "given_up", None)
        return given_up is None or not given_up.is_set()

    def together(self, reads: list[Callable[[], object]], lanes: int = TOGETHER_LANES) -> list:
        """Run independent reads at once, `lanes` at a time, in order; their results in order.

        On a real cluster each request waits a round trip and the server: made one after another,
        skew's eleven took 1.6x kubectl's three gets at 20 ms a request (benchmarks/kubectl_ratio.py),
        together 1.0x. Each lane is a connection, and each new connection a TLS handshake, which
        on a near cluster costs more than it saves: list the longest chains of reads first.
        Errors stay those of the reads made one after another: when several fail, the first
        read's error is raised; once one read gives up on the server, the others retry no more and
        no further read starts.
        """
        if len(reads) < 2 or lanes < 2:
            return [read() for read in reads]
        given_up = threading.Event()
        results: list = [None] * len(reads)
        errors: list[BaseException | None] = [None] * len(reads)
        upcoming = iter(range(len(reads)))
        dispatch = threading.Lock()

        def lane() -> None:
            self._together.given_up = given_up
            try:
                while not given_up.is_set():
                    with dispatch:
                        index = next(upcoming, None)
                    if index is None:
                        return
                    try:
                        results[index] = reads[index]()
                    except BaseException as exc:  # handed to the caller's thread below
                        errors[index] = exc
                        if isinstance(exc, ClusterUnavailable):
                            given_up.set()
            finally:
                self._together.given_up = None

        threads = [threading.Thread(target=lane, name=f"reads-{number}", daemon=True)
                   for number in range(1, min(lanes, len(reads)))]
        for thread in threads:
            thread.start()
        lane()
        for thread in threads:
            thread.join()
        for error in errors:
            if error is not None:
                raise error
        return results

    def _describe_server(self) -> str:
        return self.target.server or "the API server"

    def request_json(self, method: str, path: str, query: dict | None = None, body: dict | None = None,
                     resource: Resource | None = None, namespace: str | None = None, verb: str = "get",
                     retry: bool | None = None) -> dict:
        """One request with bounded retries for 429/5xx; returns the decoded JSON body.

        Reads are retried; other requests only with `retry=True` (an access review changes nothing).
        A 401 fetches the credential again (exec plugin, token file) and retries once if it changed.
        """
        retry = method == "GET" if retry is None else retry
        transport = self._transport()
        url = self.target.server.rstrip("/") + path
        timeout = self.target.request_timeout
        if timeout:  # kubectl tells the server too, so it gives up on its side in time
            from .config import go_duration

            query = {**(query or {}), "timeout": go_duration(timeout)}
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        payload = json.dumps(body).encode() if body is not None else None
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            self._count_request()
            headers = [("Accept", "application/json"), *transport.headers()]
            if payload is not None:
                headers.append(("Content-Type", "application/json"))
            try:
                response = transport.request(method, url, headers, payload, timeout=timeout or None)
            except DROPPED as exc:  # the connection dropped mid-request
                if retry and attempt < MAX_ATTEMPTS and self._may_retry():
                    delay = self._retry_delay(0, None, attempt)
                    log.debug("connection dropped during %s, retrying in %.1fs", path, delay)
                    self._sleep(delay)
                    if self._may_retry():
                        continue
                raise self._transport_error(exc) from exc
            except (OSError, HTTPException) as exc:
                raise self._transport_error(exc) from exc
            status, data = response.status, response.data
            if status < 300:
                try:
                    return json.loads(data)
                except ValueError as exc:
                    raise ClusterUnavailable(f"{self._describe_server()} answered {path} with something that is not JSON; is --server a Kubernetes API server?") from exc
            if status == 401 and not refreshed:
                refreshed = True
                if transport.credentials.refresh(dict(headers).get("Authorization")):
                    log.debug("401 from %s: the credential was renewed, retrying once", path)
                    continue
            if status in (429, 500, 502, 503, 504) and retry and attempt < MAX_ATTEMPTS and self._may_retry():
                delay = self._retry_delay(status, response.headers.get("Retry-After"), attempt)
                log.debug("HTTP %s from %s, retrying in %.1fs", status, path, delay)
                self._sleep(delay)
                if self._may_retry():
                    continue
            raise self._status_error(status, data, path, resource, namespace, verb, attempts=attempt)

    @staticmethod
    def _retry_delay(status: int, retry_after: str | None, attempt: int) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER_S)
            except ValueError:
                pass
        return min(0.2 * 2 ** (attempt - 1), 2.0) * (0.5 + random.random() / 2)

    def _transport_error(self, exc: Exception) -> ClusterUnavailable:
        server = self._describe_server()
        host = urlparse(server).netloc or server
        text = str(exc)
        lowered = text.lower()
        proxy = self.target.connection.proxy
        if proxy and _is_proxy_failure(exc):
            proxy_host = urlparse(proxy).netloc.rpartition("@")[2]  # never the proxy's password
            from_kubeconfig = bool(self.target.connection.cluster_entry.get("proxy-url"))
            return ClusterUnavailable(
                f"the proxy {proxy_host} ({'proxy-url in the kubeconfig' if from_kubeconfig else 'HTTPS_PROXY'}) "
                f"did not carry the connection to {host}: check that the proxy is up and lets you through"
                + ("" if from_kubeconfig else f", or add {urlparse(server).hostname} to NO_PROXY"))
        if "certificate" in lowered or "ssl" in lowered:
            reason = _short_tls_reason(text)
            hint = ("check the server address, or set tls-server-name (--tls-server-name) to a name the certificate "
                    "carries" if reason == WRONG_HOST else
                    "check certificate-authority for this cluster in your kubeconfig")
            return ClusterUnavailable(f"the TLS certificate of {server} could not be verified ({reason}); {hint}")
        if "timed out" in lowered or "timeout" in lowered:
            limit = self.target.request_timeout
            return ClusterUnavailable(
                f"the API server {server} did not answer within {_fmt_seconds(limit) if limit else '30s (connect)'}; "
                "check that it is up, or raise --request-timeout"
            )
        if "aborted" in lowered or "reset" in lowered or "closed connection" in lowered:
            return ClusterUnavailable(
                f"the API server {server} kept closing the connection without an answer; "
                "check that it (or a proxy or load balancer in front of it) is healthy, then try again"
            )
        if "refused" in lowered:
            return ClusterUnavailable(
                f"the connection to the server {host} was refused - did you specify the right host or port?"
            )
        return ClusterUnavailable(f"cannot reach the API server {server}: {_first_line(text)}")

    def _status_error(self, status: int, data: bytes, path: str, resource: Resource | None,
                      namespace: str | None, verb: str, attempts: int = 1) -> WaypointError:
        message = _status_message(data)
        if status == 401:
            return ClusterUnavailable(
                f"authentication to {self._describe_server()} failed (401 Unauthorized): the credentials of "
                f"{self.target.connection.who} are invalid or expired; log in again"
            )
        if status == 410 and verb == "list":
            return ContinueExpired(message or "continue token expired")
        if status == 403 and resource is not None:
            return PermissionDenied(verb, resource, namespace)
        if status == 404 and resource is not None:
            if verb == "list" or _is_group_missing(data):
                return ResourceNotInstalled(resource)
            return NotFound(message or f"{resource.plural} not found")
        if status == 429 or status >= 500:
            failed = f"kept failing {attempts} times" if attempts > 1 else "failed"
            return ClusterUnavailable(
                f"the API server {self._describe_server()} {failed} ({status}: {message or 'no message'}) for {path}; "
                "try again later"
            )
        return ClusterUnavailable(f"the API server refused {verb} {path} ({status}: {message or 'no message'})")

    # -- reads ----------------------------------------------------------------------------

    def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict:
        path = resource.path(_segment(namespace, "namespace"), _segment(name, resource.plural[:-1] + " name"))
        return self.request_json("GET", path, resource=resource, namespace=namespace)

    def list(self, resource: Resource, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None, transform: Callable[[dict], object] = lambda item: item,
             page_size: int = PAGE_SIZE) -> list:
        """Every item, each passed through `transform` page by page so raw objects never pile up.

        Selectors run on the server. When a continue token expires (410 Gone) the list starts over,
        as kubectl does, at most LIST_RESTARTS times.
        """
        for _ in range(LIST_RESTARTS + 1):
            results: list = []
            token = None
            try:
                while True:
                    page = self.request_json(
                        "GET", resource.path(_segment(namespace, "namespace")),
                        {"labelSelector": label_selector, "fieldSelector": field_selector,
                         "limit": page_size, "continue": token},
                        resource=resource, namespace=namespace, verb="list",
                    )
                    results.extend(transform(item) for item in page.get("items") or [])
                    token = (page.get("metadata") or {}).get("continue")
                    if not token:
                        return results
            except ContinueExpired:
                log.debug("continue token for %s expired, restarting the list", resource.plural)
        raise ClusterUnavailable(
            f"the list of {resource.plural} kept expiring before it could be read to the end; try again"
        )

    def has_api(self, resource: Resource) -> bool:
        """Whether the cluster serves this resource (one discovery request per group version).

        Gateway API, Istio and Sail are CRDs: absent is normal on many clusters, not an error.
        """
        key = resource.group_version
        if key not in self._served:
            try:
                doc = self.request_json("GET", resource.base, resource=resource, verb="get")
                self._served[key] = {r.get("name") for r in doc.get("resources") or []}
            except (ResourceNotInstalled, NotFound):
                self._served[key] = set()
        return resource.plural in self._served[key]

    # -- exec -----------------------------------------------------------------------------

    # -- streaming (kube/watch.py) -------------------------------------------------------------

    def stream_json_lines(self, path: str, query: dict, read_timeout: float, resource: Resource | None = None,
                          namespace: str | None = None) -> Iterator[dict]:
        """One streaming GET (a watch): each newline-delimited JSON object as it arrives.

        No retries: the caller resumes from what it saw. Errors are request_json's, with 410 Gone as
        ContinueExpired (start again from a new list); a stream cut mid-way is ClusterUnavailable,
        one the server ends is a normal end. `read_timeout` bounds the wait for the next line.
        """
        transport = self._transport()
        url = self.target.server.rstrip("/") + path + "?" + urlencode(query)
        self._count_request()
        try:
            response = transport.stream(url, [("Accept", "application/json"), *transport.headers()], read_timeout)
            if response.status >= 300:
                data = response.read()
                response.release()
                if response.status == 410:
                    raise ContinueExpired(_status_message(data) or "resource version too old")
                raise self._status_error(response.status, data, path, resource, namespace, "watch")
            pending, complete = b"", False
            try:
                for chunk in response.chunks():
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield json.loads(line)
                complete = True
            finally:  # a stream left half-read must not go back to the pool
                response.release() if complete else response.close()
        except (HTTPException, OSError, ValueError) as exc:
            raise self._transport_error(exc) from exc

    def exec(self, namespace: str, pod: str, container: str | None, argv: list[str],
             stdin: bytes | None = None, timeout: float | None = None) -> ExecResult:
        """Run argv in the container (never through a shell) and collect its output."""
        stdout, stderr = bytearray(), bytearray()
        session = self.exec_stream(namespace, pod, container, argv, stdin=stdin, timeout=timeout)
        for channel, data in session:
            (stdout if channel == 1 else stderr).extend(data)
        return ExecResult(argv, session.returncode, bytes(stdout), bytes(stderr))

    def exec_stream(self, namespace: str, pod: str, container: str | None, argv: list[str],
                    stdin: bytes | None = None, timeout: float | None = None) -> "ExecStream":
        """Start argv in the container; iterate the result for (channel, bytes) as they arrive."""
        transport = self._transport()
        query = [("command", arg) for arg in argv]
        if container:
            query.append(("container", container))
        query += [("stdin", "true" if stdin is not None else "false"), ("stdout", "true"),
                  ("stderr", "true"), ("tty", "false")]
        where = f"namespaces/{_segment(namespace, 'namespace')}/pods/{_segment(pod, 'pod name')}"
        base = self.target.server.rstrip("/")
        url = ("wss" + base[5:] if base.startswith("https") else "ws" + base[4:]) + f"/api/v1/{where}/exec"
        url += "?" + urlencode(query)
        log.debug("exec in %s/%s (%s): %s", namespace, pod, container or "default container", argv)
        refreshed = False
        while True:
            self._count_request()
            headers = transport.headers()
            try:
                ws = _channels(transport.open_websocket(url, headers))
                break
            except WaypointError:
                raise
            except Exception as exc:  # websocket-client raises its own types for handshake failures
                if getattr(exc, "status_code", None) == 401 and not refreshed:
                    refreshed = True
                    if transport.credentials.refresh(dict(headers).get("Authorization")):
                        continue
                raise self._exec_handshake_error(exc, namespace, pod, container) from exc
        if stdin is not None:
            ws.write_channel(0, stdin)
            ws.close_channel(0)  # v5 tells the program its stdin has ended
        return ExecStream(ws, argv, pod, namespace, timeout)

    def _exec_handshake_error(self, exc: Exception, namespace: str, pod: str, container: str | None) -> WaypointError:
        status = getattr(exc, "status_code", None)
        body = getattr(exc, "resp_body", b"") or b""
        text = _status_message(body) if body else str(exc)
        if status == 404:
            return NotFound(f'pod "{pod}" not found in namespace "{namespace}"')
        if status == 403:
            # The API server names the verb it refused: `get` for a WebSocket exec on every version,
            # `create` as well from Kubernetes 1.35 (KEP-4006); a role needs both.
            refused = re.search(r'cannot (\w+) resource "pods/exec"', text)
            denied = PermissionDenied(refused.group(1) if refused else "get", Resource("", "v1", "pods"), namespace,
                                      subresource="exec")
            denied.message = denied.message.replace("; ask your", "; exec needs get and create on pods/exec: ask your")
            return denied
        if status == 401:
            return self._status_error(401, body, "exec", None, namespace, "create")
        if status == 400:
            return ExecFailed(f'cannot exec into pod "{pod}" in namespace "{namespace}": {text}')
        if status is None:
            return self._transport_error(exc)
        return ExecFailed(f'exec into pod "{pod}" in namespace "{namespace}" failed ({status}): {text}')


def _channels(websocket):
    """The kubernetes client's channel reader (v4/v5 framing) over a WebSocket we opened ourselves.

    Its own constructor opens the connection with only the Authorization header and its own
    proxy handling; ours carries impersonation and every proxy kind (kube/transport.py).
    """
    from kubernetes.stream.ws_client import WSClient, _IgnoredIO

    client = WSClient.__new__(WSClient)
    client._connected, client._channels, client._closed_channels = True, {}, set()
    client.binary, client.newline, client._returncode = True, b"\n", None
    client._all = _IgnoredIO()  # no copy of all output (capture_all=False)
    client.sock = websocket
    client.subprotocol = websocket.getsubprotocol() or (websocket.getheaders() or {}).get("sec-websocket-protocol")
    return client


class ExecStream:
    """A running exec session: iterate for (channel, bytes); `returncode` once it has ended."""

    def __init__(self, ws, argv: list[str], pod: str, namespace: str, timeout: float | None):
        self._ws = ws
        self.argv, self.pod, self.namespace = argv, pod, namespace
        self._deadline = time.monotonic() + timeout if timeout else None
        self.returncode: int | None = None
        self.broken = False  # the stream ended without an exit status (connection cut)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        ws = self._ws
        try:
            while ws.is_open():
                wait = 1.0 if self._deadline is None else min(1.0, self._deadline - time.monotonic())
                if wait <= 0:
                    raise ExecFailed(
                        f'the command in pod "{self.pod}" did not finish in time; it was stopped'
                    )
                try:
                    ws.update(timeout=wait)
                except Exception as exc:  # a cut connection surfaces as websocket/socket errors
                    log.debug("exec stream ended abruptly: %s", exc)
                    self._close_quietly()
                    break
                for channel in (1, 2):
                    data = self._read(channel)
                    if data:
                        yield channel, data
            for channel in (1, 2):
                data = self._read(channel)
                if data:
                    yield channel, data
            self.returncode = self._read_status(self._read(3))
        finally:
            self._close_quietly()

    def _read(self, channel: int) -> bytes:
        """What the channel holds. The client's read first polls the socket, which raises on a cut
        connection: then the stream is marked closed and what had arrived is still returned."""
        try:
            return self._ws.read_channel(channel)
        except Exception as exc:  # websocket/socket errors of a connection cut mid-read
            log.debug("exec stream ended abruptly: %s", exc)
            self._close_quietly()
            return self._ws.read_channel(channel)  # closed: no polling, only what was buffered

    def _close_quietly(self) -> None:
        """Close the stream; on a connection already lost, the close frame cannot be sent, which is fine."""
        try:
            self._ws.close()
        except Exception as exc:  # websocket/socket errors: the peer is gone either way
            log.debug("closing a lost exec stream: %s", exc)

    def _read_status(self, raw: bytes | str) -> int:
        if not raw:
            self.broken = True
            return -1
        try:
            status = json.loads(raw)
        except ValueError:
            self.broken = True
            return -1
        if status.get("status") == "Success":
            return 0
        if status.get("reason") == "NonZeroExitCode":
            for cause in (status.get("details") or {}).get("causes") or []:
                if cause.get("reason") == "ExitCode":
                    try:
                        return int(cause.get("message"))
                    except (TypeError, ValueError):
                        break
            return 1
        message = status.get("message") or "unknown error"
        if "executable file not found" in message or "no such file or directory" in message:
            raise ExecutableMissing(
                f'pod "{self.pod}" in namespace "{self.namespace}" has no "{self.argv[0]}" program: {_first_line(message)}'
            )
        raise ExecFailed(f'exec into pod "{self.pod}" in namespace "{self.namespace}" failed: {_first_line(message)}')

    def close(self) -> None:
        self._close_quietly()


def _segment(value: str | None, what: str) -> str | None:
    """A name as one path segment: user input must never reach another path or a query."""
    if not value:
        return value
    if "/" in value or value in (".", ".."):
        raise BadInput(f"{what} {value!r} is not a valid Kubernetes name; check the spelling")
    return quote(value, safe="")


def _status_message(data: bytes | str) -> str:
    try:
        doc = json.loads(data)
    except (ValueError, TypeError):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")
        return _first_line(text)
    return doc.get("message", "") if isinstance(doc, dict) else ""


def _is_group_missing(data: bytes) -> bool:
    """kube-apiserver answers an unknown group path with a plain-text 404, not a Status."""
    try:
        doc = json.loads(data)
    except (ValueError, TypeError):
        return True
    return not (isinstance(doc, dict) and doc.get("kind") == "Status" and doc.get("details"))


def _is_proxy_failure(exc: Exception) -> bool:
    """The proxy unreachable or refusing the tunnel (ours), or a SOCKS failure (PySocks')."""
    from .transport import ProxyFailure

    if isinstance(exc, ProxyFailure):
        return True
    return type(exc).__module__.startswith("socks") or "socks" in str(exc).lower()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def _short_tls_reason(text: str) -> str:
    lowered = text.lower()
    if "unknown ca" in lowered or "unable to get local issuer" in lowered or "self-signed" in lowered or "self signed" in lowered:
        return "certificate signed by unknown authority"
    if "expired" in lowered:
        return "certificate has expired"
    if "hostname" in lowered or "ip address mismatch" in lowered:
        return WRONG_HOST
    return "certificate verify failed"


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:g}s"
