"""The HTTP side of the simulated API server: parse a request like kube-apiserver, answer it.

One thread per connection (HTTP/1.1 keep-alive); TLS is negotiated on that thread so a slow
client never holds up `accept`. Everything a test can change at run time (objects, deny rules,
faults, the exec handler) lives on the `SimCluster` and is read per request.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import gzip
import json
import logging
import select
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from . import status as st
from .access import ANONYMOUS_USER, Attributes, authorizations, forbidden_reason
from .podexec import ExecRequest, ExecSession, negotiate
from .proto import access_review_spec
from .resources import (Resource, api_group_document, api_group_list_document, api_resource_list_document,
                        api_versions_document, group_versions, resource_for, version_document)
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import supported_fields, with_typemeta
from .tables import table, wants_table
from .watch import Dropped, WatchError, WatchRequest, stream
from .websocket import accept_key

if TYPE_CHECKING:
    from .cluster import SimCluster

log = logging.getLogger(__name__)

_IDLE_TIMEOUT_SECONDS = 120
_WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
_NOT_WRITES = frozenset({"pods/exec", "selfsubjectaccessreviews"})
_PAGE_NOT_FOUND = b"404 page not found\n"


@dataclass
class RequestRecord:
    """One request as served: what was asked, how it was authorised, what it got."""

    method: str
    path: str
    query: dict[str, str]
    status: int = 0  # 0: the connection was dropped without an answer
    verb: str = ""
    group: str = ""
    resource: str = ""  # with subresource: "pods/exec"
    namespace: str = ""
    name: str = ""
    exec_argv: list[str] | None = None
    exec_exit_code: int | None = None
    # Who asked, as an API server's authenticators and impersonation filter see it:
    user: str = ""  # the authenticated user ("" when authentication failed)
    credential: str = ""  # "token", "client-certificate" or "anonymous"
    impersonate: dict | None = None  # {"user", "groups", "uid", "extra"} from Impersonate-* headers
    peer: tuple = ()  # the client's (host, port): a proxy's connection when one carried the request
    accept_encoding: str = ""
    gzipped: bool = False  # the answer went out gzip-encoded

    @property
    def acting_user(self) -> str:
        """The user the access rules judge: the impersonated one, if any."""
        return (self.impersonate or {}).get("user") or self.user

    @property
    def is_write(self) -> bool:
        """A mutation a read-only tool must never attempt (exec and access reviews excepted)."""
        return self.verb in _WRITE_VERBS and self.resource not in _NOT_WRITES


@dataclass(frozen=True)
class RequestInfo:
    """kube-apiserver's RequestInfo: the path split into group, resource, namespace, name."""

    resource_request: bool
    verb: str
    group: str = ""
    version: str = ""
    plural: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def attributes(self) -> Attributes:
        return Attributes(self.verb, self.group, self.plural, self.subresource, self.namespace, self.name)


def parse_request_info(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    """Split an API path the way kube-apiserver's RequestInfoFactory does (pure)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return RequestInfo(False, method.lower())
    watch = False
    if rest[0] == "watch":
        watch, rest = True, rest[1:]
        if not rest:
            return RequestInfo(False, method.lower())
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2:
            rest = rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if method == "GET":
        verb = "watch" if watch or query.get("watch") in ("true", "1") else "get" if name else "list"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(method, method.lower())
    return RequestInfo(True, verb, group, version, plural, subresource, namespace, name)


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _encode_continue(revision: int, key: str) -> str:
    token = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": key + "\x00"}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def _decode_continue(token: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        start = data["start"]
        if data.get("v") != "meta.k8s.io/v1" or not isinstance(start, str) or not start.endswith("\x00"):
            raise ValueError("unknown version or start key")
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise SelectorError(f"continue key is not valid: {exc}") from None
    return start[:-1]


# kube-apiserver gzips (level 1) an answer over 128 KiB for a client that accepts gzip
# (APIResponseCompression, on by default; apiserver/pkg/endpoints/handlers/responsewriters/writers.go:
# defaultGzipThresholdBytes, defaultGzipContentEncodingLevel). Watches stream uncompressed.
GZIP_THRESHOLD_BYTES = 128 * 1024


class _Response(Exception):
    """Raised inside routing to answer right away."""

    def __init__(self, code: int, body: bytes, content_type: str = "application/json",
                 headers: dict[str, str] | None = None, drop: bool = False):
        super().__init__(code)
        self.code, self.body, self.content_type, self.headers = code, body, content_type, headers or {}
        self.drop = drop  # hang up instead of answering


def _page_not_found() -> _Response:
    return _Response(404, _PAGE_NOT_FOUND, "text/plain; charset=utf-8")


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, sim: SimCluster, ssl_context: ssl.SSLContext | None):
        self.sim = sim
        self.ssl_context = ssl_context
        if ssl_context is not None and sim.ca_file and sim.client_certificates:
            # Like kube-apiserver's --client-ca-file: a certificate signed by the cluster CA authenticates.
            # (Python cannot ask for a certificate without verifying it, so this is opt-in: a certificate
            # from another CA then fails the handshake, where kube-apiserver would ignore it.)
            ssl_context.verify_mode = ssl.CERT_OPTIONAL
            ssl_context.load_verify_locations(sim.ca_file)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), SimRequestHandler)

    def finish_request(self, request, client_address) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            try:
                request.settimeout(10)
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                log.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
        with self._connections_lock:
            self._connections.add(request)
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            with self._connections_lock:
                self._connections.discard(request)
            try:
                request.close()
            except OSError:
                pass

    def close_connections(self) -> None:
        """Hang up on every open connection, so clients do not wait on a stopped server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:
        log.debug("error serving %s", client_address, exc_info=True)


class SimRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _IDLE_TIMEOUT_SECONDS
    server: SimHTTPServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        log.debug("%s - " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _serve(self) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        path = unquote(url.path)
        multi = parse_qs(url.query, keep_blank_values=True)
        query = {k: v[-1] for k, v in multi.items()}
        info = parse_request_info(self.command, path, query)
        record = RequestRecord(self.command, path, query, verb=info.verb, group=info.group,
                               resource=f"{info.plural}/{info.subresource}" if info.subresource else info.plural,
                               namespace=info.namespace, name=info.name)
        body = self._read_body()
        record.peer, record.accept_encoding = tuple(self.client_address), self.headers.get("Accept-Encoding", "")
        try:
            self._answer_faults(path, query)
            record.user, record.credential = self._authenticate()
            record.impersonate = self._impersonation(record.user)
            user = record.acting_user
            if info.resource_request:
                self._route_resource(info, multi, query, body, user, record)
            else:
                self._route_discovery(path)
        except _Response as response:
            if response.code:  # 0: answered already (exec) or dropped on purpose (a fault)
                record.status = response.code
            if response.code and not response.drop:
                response = self._gzipped(response)
                record.gzipped = "Content-Encoding" in response.headers
            if record.status != 101:  # an exec is logged as it starts, so live sessions show up
                sim._log_request(record)  # before answering: a client may look at the log right after
            if response.drop:
                self._hang_up()
            elif response.code:
                self._respond(response)
        except (OSError, ssl.SSLError):
            self.close_connection = True
            raise
        except Exception as exc:  # a bug here must still reach the client as a clear 500
            log.debug("error serving %s %s", self.command, self.path, exc_info=True)
            record.status = 500
            sim._log_request(record)
            self._respond(_Response(500, st.status_body(500, f"simulated cluster error: {exc!r}")))

    def _gzipped(self, response: _Response) -> _Response:
        """The answer as kube-apiserver sends it: gzipped when over the threshold and gzip is accepted."""
        if (len(response.body) <= GZIP_THRESHOLD_BYTES or self.command == "HEAD"
                or "gzip" not in (self.headers.get("Accept-Encoding") or "").lower()):
            return response
        return _Response(response.code, gzip.compress(response.body, compresslevel=1, mtime=0), response.content_type,
                         {**response.headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"})

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -------------------------------------------------------------- plumbing

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _respond(self, response: _Response) -> None:
        phrase = HTTPStatus(response.code).phrase if response.code in HTTPStatus._value2member_map_ else ""
        headers = {"Audit-Id": str(uuid.uuid4()), "Cache-Control": "no-cache, private",
                   "Content-Type": response.content_type, "Date": email.utils.formatdate(usegmt=True),
                   **response.headers, "Content-Length": str(len(response.body))}
        head = f"HTTP/1.1 {response.code} {phrase}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.wfile.write(head.encode("latin-1") + b"\r\n" + (b"" if self.command == "HEAD" else response.body))

    def _answer_faults(self, path: str, query: dict[str, str]) -> None:
        fault = self.server.sim.faults.take(self.command, path, query)
        if fault is None:
            return
        if fault.delay:
            time.sleep(fault.delay)
        if fault.close:
            raise _Response(0, b"", drop=True)
        if fault.expired_continue:
            raise _Response(410, st.status_body(410, fault.message or st.EXPIRED_CONTINUE, fault.reason or "Expired"))
        if fault.status:
            headers = {}
            details = None
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
                details = {"retryAfterSeconds": fault.retry_after}
            body = st.status_body(fault.status, fault.message, fault.reason, details)
            raise _Response(fault.status, body, headers=headers)

    def _authenticate(self) -> tuple[str, str]:
        """(user, how): a client certificate signed by the cluster CA first, then a bearer token."""
        sim = self.server.sim
        certificate = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        if certificate:
            names = dict(pair[0] for pair in certificate.get("subject", ()))
            return names.get("commonName", ""), "client-certificate"
        header = self.headers.get("Authorization")
        if header is None and sim.anonymous:
            return ANONYMOUS_USER, "anonymous"
        scheme, _, token = (header or "").strip().partition(" ")
        if scheme == "Bearer" and token == sim.token:
            return sim.user, "token"
        if scheme == "Bearer" and token in sim.tokens:
            return sim.tokens[token], "token"
        raise _Response(401, st.status_body(401, "Unauthorized", "Unauthorized"))

    def _impersonation(self, user: str) -> dict | None:
        """The Impersonate-* headers; kube-apiserver refuses groups or uid without a user."""
        headers = self.headers
        extra = {name[len("Impersonate-Extra-"):].lower(): headers.get_all(name) for name in set(headers.keys())
                 if name.lower().startswith("impersonate-extra-")}
        asked = {"user": headers.get("Impersonate-User"), "groups": headers.get_all("Impersonate-Group") or [],
                 "uid": headers.get("Impersonate-Uid"), "extra": extra}
        if not any(asked.values()):
            return None
        if not asked["user"]:
            raise _Response(400, st.bad_request("requested impersonation of groups, uid or extra without a user"))
        if not self.server.sim.access.allows(Attributes("impersonate", "", "users", name=asked["user"]), user):
            raise _Response(403, st.status_body(403, f'users "{asked["user"]}" is forbidden: User "{user}" '
                                                     'cannot impersonate resource "users" in API group "" '
                                                     "at the cluster scope", "Forbidden"))
        return asked

    # -------------------------------------------------------------- discovery

    def _route_discovery(self, path: str) -> None:
        sim = self.server.sim
        path = path.rstrip("/") or "/"
        parts = path.strip("/").split("/")
        document: dict | None = None
        if path == "/version":
            document = version_document(sim.kubernetes_version)
        elif path in ("/healthz", "/livez", "/readyz"):
            raise _Response(200, b"ok", "text/plain; charset=utf-8")
        elif path == "/api":
            document = api_versions_document(f"127.0.0.1:{sim.port}")
        elif path == "/apis":
            document = api_group_list_document(sim.installed)
        elif parts[0] == "api" and len(parts) == 2:
            document = api_resource_list_document("", parts[1], sim.installed)
        elif parts[0] == "apis" and len(parts) == 2:
            document = api_group_document(parts[1], sim.installed)
        elif parts[0] == "apis" and len(parts) == 3:
            document = api_resource_list_document(parts[1], parts[2], sim.installed)
        if document is None:
            raise _page_not_found()
        raise _Response(200, json.dumps(document, separators=(",", ":")).encode())

    # -------------------------------------------------------------- resources

    def _route_resource(self, info: RequestInfo, multi: dict[str, list[str]], query: dict[str, str], body: bytes,
                        user: str, record: RequestRecord) -> None:
        sim = self.server.sim
        websocket = self.headers.get("Upgrade", "").lower() == "websocket"
        denied = sim.access.first_denied(authorizations(info.attributes, sim.kubernetes_version, websocket), user)
        if denied is not None:
            known = resource_for(info.group, info.version, info.plural) or \
                Resource(info.group, info.version, info.plural, "", True)
            raise _Response(403, st.forbidden(known, info.name, forbidden_reason(user, denied)))
        if info.version not in group_versions(sim.installed).get(info.group, []):
            raise _page_not_found()
        resource = resource_for(info.group, info.version, info.plural)
        if resource is None:
            raise _page_not_found()
        namespaces = resource.plural == "namespaces"
        if (info.namespace and not resource.namespaced and not namespaces) or \
                (resource.namespaced and info.name and not info.namespace):
            raise _page_not_found()
        if info.subresource:
            if info.subresource == "exec" and resource.plural == "pods" and info.name:
                self._exec(resource, info, multi, query, record)
            raise _page_not_found()
        if resource.plural == "selfsubjectaccessreviews":
            if info.verb != "create":
                raise _Response(405, st.method_not_allowed())
            self._access_review(body, user)
        if info.verb in _WRITE_VERBS:
            raise _Response(405, st.method_not_allowed())
        namespace = "" if namespaces else info.namespace
        if info.verb == "watch":
            return self._watch(resource, namespace, query, record)
        if info.verb == "get":
            entry = sim.store.entry(resource, namespace, info.name)
            if entry is None:
                raise _Response(404, st.not_found(resource, info.name))
            if wants_table(self.headers.get("Accept", "")):
                self._table(resource, [entry.bare], {"resourceVersion": str(sim.store.resource_version)})
            raise _Response(200, with_typemeta(resource, entry.bare))
        self._list(resource, namespace, query)

    def _list(self, resource: Resource, namespace: str, query: dict[str, str]) -> None:
        sim = self.server.sim
        try:
            labels = parse_label_selector(query["labelSelector"]) if query.get("labelSelector", "").strip() else None
            fields = parse_field_selector(query["fieldSelector"], supported_fields(resource)) \
                if query.get("fieldSelector", "").strip() else None
            after = _decode_continue(query["continue"]) if query.get("continue") else None
            limit = int(query.get("limit") or 0)
        except SelectorError as exc:
            raise _Response(400, st.bad_request(str(exc))) from None
        except ValueError:
            raise _Response(400, st.bad_request(f"invalid limit: {query.get('limit')!r}")) from None
        revision = sim.store.resource_version
        page = sim.store.page(resource, namespace, labels, fields, max(limit, 0), after)
        items = page.items if not resource.crd else [with_typemeta(resource, item) for item in page.items]
        meta = {"resourceVersion": str(revision)}
        if page.last_key is not None:
            meta["continue"] = _encode_continue(revision, page.last_key)
            if page.remaining is not None:
                meta["remainingItemCount"] = page.remaining
        if wants_table(self.headers.get("Accept", "")):
            self._table(resource, page.items, meta)
        head = (f'{{"kind":"{resource.kind}List","apiVersion":"{resource.api_version}","metadata":'
                f'{json.dumps(meta, separators=(",", ":"))},"items":[').encode()
        raise _Response(200, head + b",".join(items) + b"]}")

    def _watch(self, resource: Resource, namespace: str, query: dict[str, str], record: RequestRecord) -> None:
        """Stream the watch (sim/watch.py) as chunked JSON lines until it ends or either side hangs up."""
        try:
            request = WatchRequest.parse(resource, namespace, query, wants_table(self.headers.get("Accept", "")))
        except WatchError as exc:
            raise _Response(exc.code, exc.body) from None
        record.status = 200
        self.server.sim._log_request(record)
        self.close_connection = True
        # A watch client sends nothing more on this connection: readable means it hung up.
        gone = lambda: self.server.sim._stopped.is_set() or bool(select.select([self.connection], [], [], 0)[0])  # noqa: E731
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                             b"Cache-Control: no-cache, private\r\n\r\n")
            for line in stream(request, self.server.sim.store, gone):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.write(b"0\r\n\r\n")
        except (Dropped, OSError):
            self._hang_up()

    @staticmethod
    def _table(resource: Resource, items: list[bytes], meta: dict) -> None:
        document = table(resource.plural, [json.loads(item) for item in items], meta)
        raise _Response(200, json.dumps(document, separators=(",", ":")).encode())

    def _access_review(self, body: bytes, user: str) -> None:
        try:
            if self.headers.get("Content-Type", "").startswith("application/vnd.kubernetes.protobuf"):
                spec = access_review_spec(body)
            else:
                spec = json.loads(body or b"{}")["spec"]
            if not isinstance(spec, dict):
                raise TypeError("spec must be an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise _Response(400, st.bad_request(f"invalid SelfSubjectAccessReview: {exc}")) from None
        answer = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                  "metadata": {"creationTimestamp": None}, "spec": spec,
                  "status": self.server.sim.access.review(spec, user)}
        raise _Response(201, json.dumps(answer, separators=(",", ":")).encode())

    # -------------------------------------------------------------- exec

    def _exec(self, resource: Resource, info: RequestInfo, multi: dict[str, list[str]], query: dict[str, str],
              record: RequestRecord) -> None:
        sim = self.server.sim
        argv = multi.get("command", [])
        record.exec_argv = argv
        entry = sim.store.entry(resource, info.namespace, info.name)
        if entry is None:
            raise _Response(404, st.not_found(resource, info.name))
        pod = json.loads(with_typemeta(resource, entry.bare))
        container = self._exec_container(pod, query.get("container", ""))
        stdin, stdout, stderr, tty = (_flag(query.get(k)) for k in ("stdin", "stdout", "stderr", "tty"))
        if not argv:
            raise _Response(400, st.bad_request("you must specify at least 1 command"))
        if not (stdin or stdout or stderr):
            raise _Response(400, st.bad_request("you must specify at least 1 of stdin, stdout, stderr"))
        if self.headers.get("Upgrade", "").lower() != "websocket" or not self.headers.get("Sec-WebSocket-Key"):
            upgrade = self.headers.get("Upgrade")
            message = (f"the simulated cluster streams exec over WebSocket only, not {upgrade}" if upgrade
                       else "Upgrade request required")
            raise _Response(400, st.bad_request(message))
        offered = self.headers.get("Sec-WebSocket-Protocol", "")
        protocol = negotiate(offered)
        if protocol is None:
            raise _Response(400, st.bad_request(
                f"unable to upgrade: requested protocol(s) are not supported: [{offered}]; "
                "supports [v5.channel.k8s.io v4.channel.k8s.io]"))
        record.status = 101
        sim._log_request(record)
        self.close_connection = True
        self.wfile.write((
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(self.headers['Sec-WebSocket-Key'])}\r\n"
            f"Sec-WebSocket-Protocol: {protocol}\r\n\r\n").encode())
        request = ExecRequest(info.namespace, pod, container, list(argv), stdin, tty)
        session = ExecSession(self.connection, protocol, request, sim.exec_handler, stdout, stderr,
                              on_exit=lambda code: setattr(record, "exec_exit_code", code))
        session.run()
        raise _Response(0, b"")

    @staticmethod
    def _exec_container(pod: dict, container: str) -> str:
        """The container to exec in, or the API server's 400 for an impossible choice."""
        name = pod["metadata"]["name"]
        spec, status = pod.get("spec", {}), pod.get("status", {})
        names = [c["name"] for c in spec.get("containers", [])]
        init_names = [c["name"] for c in spec.get("initContainers", [])]
        if not container:
            if len(names) != 1:
                message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                if init_names:
                    message += f" or one of the init containers: [{' '.join(init_names)}]"
                raise _Response(400, st.bad_request(message))
            container = names[0]
        if container not in names + init_names:
            raise _Response(400, st.bad_request(f"container {container} is not valid for pod {name}"))
        phase = status.get("phase", "")
        if phase in ("Succeeded", "Failed"):
            raise _Response(400, st.bad_request(
                f"cannot exec into a container in a completed pod; current phase is {phase}"))
        if not spec.get("nodeName"):
            raise _Response(400, st.bad_request(f"pod {name} does not have a host assigned"))
        running = any(s.get("name") == container and "running" in (s.get("state") or {})
                      for s in status.get("containerStatuses", []))
        if phase != "Running" or not running:
            raise _Response(400, st.bad_request(f'unable to upgrade connection: container not found ("{container}")'))
        return container
