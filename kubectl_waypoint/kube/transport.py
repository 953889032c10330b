"""HTTP(S) and WebSocket connections to the API server, built from one Connection description.

Every request (REST, SelfSubjectAccessReview, exec) gets the same TLS settings, the same proxy,
the same credential and the same Impersonate-* headers, which is what kubectl's one
`rest.Config` gives it. At `-v 6` and above each request is logged as kubectl logs it
(method, URL, status, milliseconds; never a header). REST is the standard library's http.client
on sockets opened here (urllib3 cost about 40 ms of imports on every command for a pool we can
keep in twenty lines); websocket-client and PySocks are imported on first use.
"""

from __future__ import annotations

import base64
import functools
import http.client
import os
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Iterator, Mapping
from urllib.parse import unquote, urlsplit

from .. import logs
from ..errors import ClusterUnavailable
from .connection import Connection
from .credentials import ClientCertificate, CredentialSource
from .proxy import redact_proxy_url

# One line per request, at -v 6 (cli.py attaches the handler).
request_log = logs.getLogger("kubectl_waypoint.requests")
# Each new connection (kept-alive ones are reused), at -v 9 only: like kubectl's -v 6, one line a
# request is all a lower level shows.
connection_log = logs.getLogger("kubectl_waypoint.connections")

CONNECT_TIMEOUT = 30.0  # seconds to connect without --request-timeout (Go's dialer gives 30 s too)
POOL_SIZE = 8  # connections kept per host; probes run up to --parallel exec sessions besides
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")


@dataclass
class Response:
    status: int
    reason: str
    headers: Mapping[str, str]
    data: bytes


class Transport:
    """The connection's TLS, proxy and credentials, shared by every request of one command."""

    def __init__(self, connection: Connection, environ: Mapping[str, str], user_agent: str):
        self.connection = connection
        self.credentials = CredentialSource(connection, environ)
        self.user_agent = user_agent
        self._lock = threading.Lock()
        self._ssl: tuple[ClientCertificate | None, ssl.SSLContext] | None = None
        self._idle: list[_Connection] = []  # kept-alive connections, at most POOL_SIZE
        self._idle_context: ssl.SSLContext | None = None

    # -- headers ------------------------------------------------------------------------------

    def headers(self) -> list[tuple[str, str]]:
        """Identity headers for one request: credential, impersonation, compression, user agent."""
        headers = [("User-Agent", self.user_agent)]
        # kubectl sends no credential to a plain http:// server (measured): neither do we.
        authorization = self.credentials.authorization() if self.connection.server.startswith("https:") else None
        if authorization:
            headers.append(("Authorization", authorization))
        for name, values in self.connection.impersonation.headers().items():
            headers += [(name, value) for value in values]
        if not self.connection.disable_compression:
            headers.append(("Accept-Encoding", "gzip"))  # what Go's transport asks for by itself
        return headers

    # -- TLS ----------------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """The client TLS context; rebuilt when an exec plugin hands out a new client certificate."""
        certificate = self.credentials.client_certificate()
        with self._lock:
            if self._ssl is None or self._ssl[0] != certificate:
                self._ssl = (certificate, self._build_ssl_context(certificate))
            return self._ssl[1]

    def _build_ssl_context(self, issued: ClientCertificate | None) -> ssl.SSLContext:
        tls, who = self.connection.tls, self.connection.who
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.set_alpn_protocols(["http/1.1"])
        if tls.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            try:
                if tls.ca_data:
                    context.load_verify_locations(cadata=tls.ca_data.decode("ascii", "replace"))
                elif tls.ca_file:
                    context.load_verify_locations(cafile=tls.ca_file)
                else:
                    context.load_default_certs()
            except (ssl.SSLError, OSError, ValueError):
                where = f'"{tls.ca_file}"' if tls.ca_file and not tls.ca_data else "certificate-authority-data"
                raise ClusterUnavailable(f"the certificate authority {where} of {who} holds no usable PEM "
                                         "certificate: fix the kubeconfig or --certificate-authority") from None
        cert_pem = issued.cert_pem if issued else tls.cert_data or _read(tls.cert_file)
        key_pem = issued.key_pem if issued else tls.key_data or _read(tls.key_file)
        if cert_pem and key_pem:
            _load_client_certificate(context, cert_pem, key_pem, who)
        return context

    def server_hostname(self, host: str) -> str:
        return self.connection.tls.server_name or host

    # -- REST ---------------------------------------------------------------------------------

    def request(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None,
                timeout: float | None) -> Response:
        """One HTTP request, the body read and decoded; OSError and http.client errors propagate to
        the caller, which words them. `timeout` bounds the connect and every read (None: 30 s to
        connect, then no limit, as kubectl without --request-timeout)."""
        started = time.monotonic()
        try:
            response, connection = self._send(method, url, headers, body, timeout)
        except Exception:
            log_request(method, url, None, "", started)
            raise
        try:
            data = response.read()
        except Exception:
            connection.close()  # cut mid-answer: never kept for the next request
            log_request(method, url, None, "", started)
            raise
        self._release(connection, response)
        log_request(method, url, response.status, response.reason or "", started)
        return Response(response.status, response.reason or "", response.headers, _decoded(data, response.headers))

    def stream(self, url: str, headers: list[tuple[str, str]], read_timeout: float | None) -> "StreamResponse":
        """A GET whose body is read as it arrives (a watch); the caller reads, then releases or closes it.
        `read_timeout` bounds the connect, the answer's head and each wait for more of the body."""
        started = time.monotonic()
        try:
            response, connection = self._send("GET", url, headers, None, read_timeout)
        except Exception:
            log_request("GET", url, None, "", started)
            raise
        log_request("GET", url, response.status, response.reason or "", started)
        return StreamResponse(self, connection, response)

    def _send(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None,
              timeout: float | None):
        """Send on a kept-alive connection if one is idle. A kept-alive connection the server has
        closed meanwhile fails before any answer: the request goes once more on a new one, as Go's
        transport does."""
        parts = urlsplit(url)
        forward = self._forwarding_proxy(parts)
        target = url if forward else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        while True:
            connection, reused = self._connection(parts, forward, timeout)
            try:
                connection.putrequest(method, target, skip_accept_encoding=True)
                for name, value in headers:
                    connection.putheader(name, value)
                if forward:
                    for name, value in _proxy_authorization(forward).items():
                        connection.putheader(name, value)
                if body is not None:
                    connection.putheader("Content-Length", str(len(body)))
                connection.endheaders(body)
                return connection.getresponse(), connection
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                if not reused:
                    raise
            except BaseException:
                connection.close()
                raise

    def _forwarding_proxy(self, parts) -> str | None:
        """The http(s):// proxy a plain http:// request is handed to whole (Go sends no CONNECT then)."""
        proxy = self.connection.proxy
        if proxy and parts.scheme == "http" and not urlsplit(proxy).scheme.startswith("socks5"):
            return proxy
        return None

    def _connection(self, parts, forward: str | None, timeout: float | None):
        """(connection, reused): an idle kept-alive one made with the current TLS context, else a new one."""
        context = self.ssl_context() if parts.scheme == "https" else None
        with self._lock:
            if self._idle_context is not context:  # an exec plugin issued a new client certificate
                for idle in self._idle:
                    idle.close()
                self._idle, self._idle_context = [], context
            connection = self._idle.pop() if self._idle else None
        if connection is not None:
            connection.sock.settimeout(timeout)
            return connection, True
        proxy = self.connection.proxy
        connection_log.debug("new connection to %s%s", parts.netloc, f" through {redact_proxy_url(proxy)}" if proxy else "")
        if forward:
            opener = functools.partial(_open_proxy, forward)
        else:
            opener = functools.partial(self.open_socket, parts.geturl())
        return _Connection(opener, parts, timeout), False

    def _release(self, connection, response) -> None:
        """Keep a connection whose answer was read to the end for the next request."""
        if response.will_close or connection.sock is None:
            connection.close()
            return
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(connection)
                return
        connection.close()

    # -- WebSocket (exec) -----------------------------------------------------------------------

    def open_socket(self, url: str, timeout: float) -> socket.socket:
        """A connected socket to the server of `url`, through the proxy, TLS done if https/wss."""
        parts = urlsplit(url)
        secure = parts.scheme in ("https", "wss")
        host = parts.hostname or ""
        port = parts.port or (443 if secure else 80)
        proxy = self.connection.proxy
        if proxy is None:
            sock = socket.create_connection((host, port), timeout=timeout)
        elif urlsplit(proxy).scheme.startswith("socks5"):
            sock = _socks_connection(proxy, host, port, timeout)
        else:
            sock = _connect_tunnel(proxy, host, port, timeout)
        _no_delay(sock)
        if secure:
            sock = self.ssl_context().wrap_socket(sock, server_hostname=self.server_hostname(host))
        return sock

    def open_websocket(self, url: str, headers: list[tuple[str, str]], timeout: float = 30.0):
        """A WebSocket handshake on our own socket, so exec carries every header and the proxy."""
        import websocket

        started = time.monotonic()
        sock = self.open_socket(url, timeout)
        sent = [f"{name}: {value}" for name, value in headers if name.lower() != "accept-encoding"]
        ws = websocket.WebSocket(skip_utf8_validation=True)
        try:
            ws.connect(url, socket=sock, header=sent, subprotocols=list(EXEC_PROTOCOLS), timeout=timeout,
                       suppress_origin=True)
        except Exception as exc:
            log_request("GET", _https(url), getattr(exc, "status_code", None), "", started)
            sock.close()
            raise
        log_request("GET", _https(url), 101, "Switching Protocols", started)
        ws.sock.settimeout(None)
        return ws


def _https(url: str) -> str:
    return "https" + url[3:] if url.startswith("wss") else "http" + url[2:] if url.startswith("ws") else url


def log_request(method: str, url: str, status: int | None, reason: str, started: float) -> None:
    """kubectl's -v 6 line: `GET https://host/path 200 OK in 3 milliseconds` (no header, no body)."""
    if request_log.isEnabledFor(logs.INFO):
        milliseconds = int((time.monotonic() - started) * 1000)
        answer = f" {status} {reason}".rstrip() if status else ""  # no answer: the connection failed
        request_log.info("%s %s%s in %d milliseconds", method, url, answer, milliseconds)


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as stream:
        return stream.read()


def _load_client_certificate(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes, who: str) -> None:
    """ssl loads certificates from files only: a private folder for the moment of loading."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="kubectl-waypoint-")
    try:
        cert_path, key_path = os.path.join(folder, "client.crt"), os.path.join(folder, "client.key")
        for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
        context.load_cert_chain(cert_path, key_path)
    except ssl.SSLError:
        raise ClusterUnavailable(f"the client certificate and key of {who} do not form a usable pair: "
                                 "fix client-certificate and client-key") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _proxy_authorization(proxy: str) -> dict[str, str]:
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode()}


def _socks_connection(proxy: str, host: str, port: int, timeout: float) -> socket.socket:
    import socks

    parts = urlsplit(proxy)
    return socks.create_connection((host, port), timeout=timeout, proxy_type=socks.SOCKS5,
                                   proxy_addr=parts.hostname, proxy_port=parts.port or 1080, proxy_rdns=True,
                                   proxy_username=unquote(parts.username) if parts.username else None,
                                   proxy_password=unquote(parts.password) if parts.password else None)


def _connect_tunnel(proxy: str, host: str, port: int, timeout: float) -> socket.socket:
    """An HTTP CONNECT tunnel through an http:// or https:// proxy, as Go's transport opens one."""
    secure = urlsplit(proxy).scheme == "https"
    sock = _open_proxy(proxy, timeout)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    lines += [f"{name}: {value}" for name, value in _proxy_authorization(proxy).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
        if len(answer) > 65536:
            break
    status_line = answer.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or fields[1] != "200":
        sock.close()
        raise ProxyRefused(redact_proxy_url(proxy), status_line.strip() or "no answer")
    return _plain_end(sock) if secure else sock


def _plain_end(tunnel: ssl.SSLSocket) -> socket.socket:
    """A plain socket whose bytes travel through `tunnel`, a TLS connection to an https proxy.

    Python cannot wrap TLS inside an SSLSocket, and the API server's TLS must run inside the
    proxy's; a thread relays between the tunnel and one end of a socket pair instead.
    """
    ours, relayed = socket.socketpair()
    threading.Thread(target=relay, args=(tunnel, relayed), daemon=True, name="https-proxy-relay").start()
    return ours


def relay(a: socket.socket, b: socket.socket, idle_seconds: float | None = None) -> None:
    """Copy bytes both ways until either side closes (or nothing moves for idle_seconds); close both."""
    import select

    a.settimeout(None)
    b.settimeout(None)
    try:
        while True:
            # TLS decrypts whole records: bytes already decrypted are invisible to select().
            pending = [end for end in (a, b) if isinstance(end, ssl.SSLSocket) and end.pending()]
            ready = pending or select.select([a, b], [], [], idle_seconds)[0]
            if not ready:
                return
            for source in ready:
                data = source.recv(65536)
                if not data:
                    return
                (b if source is a else a).sendall(data)
    except OSError:
        return
    finally:
        a.close()
        b.close()


class ProxyFailure(OSError):
    """The proxy, not the API server, failed the connection."""


class ProxyUnreachable(ProxyFailure):
    """No connection to the proxy itself."""

    def __init__(self, proxy: str, cause: OSError):
        super().__init__(f"cannot connect to the proxy {proxy}: {cause}")
        self.proxy = proxy


class ProxyRefused(ProxyFailure):
    """The proxy answered CONNECT with something else than 200."""

    def __init__(self, proxy: str, answer: str):
        super().__init__(f"the proxy {proxy} refused the tunnel ({answer[:80]})")
        self.proxy = proxy


class _Connection(http.client.HTTPConnection):
    """http.client's HTTP/1.1 connection on a socket we open: through the proxy, TLS done."""

    def __init__(self, opener, server, timeout: float | None):
        # Host: names the port only when it is not the scheme's own, as Go's request does.
        self.default_port = 443 if server.scheme == "https" else 80
        super().__init__(server.hostname or "", server.port or self.default_port, timeout=timeout)
        self._opener = opener
        self._request_timeout = timeout

    def connect(self) -> None:
        self.sock = self._opener(self._request_timeout or CONNECT_TIMEOUT)
        self.sock.settimeout(self._request_timeout)  # None: no limit on reading an answer


def _open_proxy(proxy: str, timeout: float) -> socket.socket:
    """A connection to an http(s):// proxy itself (for CONNECT, or a request it forwards whole).

    Go checks an https proxy's certificate against the system's CAs (SSL_CERT_FILE too)."""
    parts = urlsplit(proxy)
    secure = parts.scheme == "https"
    try:
        sock = socket.create_connection((parts.hostname, parts.port or (443 if secure else 80)), timeout=timeout)
    except OSError as exc:
        raise ProxyUnreachable(redact_proxy_url(proxy), exc) from exc
    _no_delay(sock)
    return ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname) if secure else sock


def _no_delay(sock: socket.socket) -> None:
    """TCP_NODELAY, as Go sets on every TCP connection: with Nagle's algorithm on, a small request
    waits for the server's delayed ACK (40 ms here on every access review). A socket pair (the
    https-proxy relay) is not TCP and needs nothing."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


class StreamResponse:
    """A streaming answer: its status, then its body in decoded chunks as they arrive."""

    def __init__(self, transport: Transport, connection: _Connection, response: http.client.HTTPResponse):
        self.status, self._transport, self._connection, self._response = response.status, transport, connection, response

    def read(self) -> bytes:
        return _decoded(self._response.read(), self._response.headers)

    def chunks(self) -> Iterator[bytes]:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if _gzipped(self._response.headers) else None
        while True:
            data = self._response.read1(65536)
            if not data:
                if inflate:
                    yield inflate.flush()
                return
            yield inflate.decompress(data) if inflate else data

    def release(self) -> None:
        """Read to the end: the connection goes back for the next request."""
        self._response.read()
        self._transport._release(self._connection, self._response)

    def close(self) -> None:
        """Left half-read: the connection cannot be reused."""
        self._connection.close()


def _gzipped(headers) -> bool:
    """Whether the body is gzip-encoded (we ask for it as Go's transport does, and undo it)."""
    return (headers.get("Content-Encoding") or "").lower() == "gzip"


def _decoded(data: bytes, headers) -> bytes:
    """The body as sent before gzip."""
    if _gzipped(headers) and data:
        try:
            return zlib.decompress(data, 16 + zlib.MAX_WBITS)
        except zlib.error as exc:
            raise http.client.HTTPException(f"the answer's gzip body is corrupt: {exc}") from exc
    return data
