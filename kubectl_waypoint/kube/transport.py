"""HTTP(S) and WebSocket connections to the API server, built from one Connection description.

Every request (REST, SelfSubjectAccessReview, exec) gets the same TLS settings, the same proxy,
the same credential and the same Impersonate-* headers, which is what kubectl's one
`rest.Config` gives it. At `-v 6` and above each request is logged as kubectl logs it
(method, URL, status, milliseconds; never a header). urllib3, websocket-client and PySocks
come with the `kubernetes` client and our dependencies; they are imported on first use.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import unquote, urlsplit

from ..errors import ClusterUnavailable
from .connection import Connection
from .credentials import ClientCertificate, CredentialSource
from .proxy import redact_proxy_url

# One line per request, at -v 6 (cli.py attaches the handler).
request_log = logging.getLogger("kubectl_waypoint.requests")

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
        self._pool = None
        self._pool_context: ssl.SSLContext | None = None

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

    def _pool_manager(self):
        context = self.ssl_context()
        with self._lock:
            if self._pool is None or self._pool_context is not context:
                if self._pool is not None:  # an exec plugin issued a new client certificate
                    self._pool.clear()
                self._pool = _pool_manager(self.connection, context)
                self._pool_context = context
            return self._pool

    def request(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None,
                timeout) -> Response:
        """One HTTP request; urllib3 exceptions propagate to the caller, which words them."""
        from urllib3 import HTTPHeaderDict

        pool = self._pool_manager()
        header_dict = HTTPHeaderDict()
        for name, value in headers:
            header_dict.add(name, value)
        started = time.monotonic()
        try:
            response = pool.request(method, url, headers=header_dict, body=body, timeout=timeout,
                                    retries=False, redirect=False, preload_content=True)
        except Exception:
            log_request(method, url, None, "", started)
            raise
        log_request(method, url, response.status, response.reason or "", started)
        return Response(response.status, response.reason or "", response.headers, response.data)

    def stream(self, url: str, headers: list[tuple[str, str]], timeout):
        """A GET whose body is read as it arrives (a watch): the urllib3 response, not yet read.

        The caller reads it with `.stream()` and then releases (read to the end) or closes it.
        """
        from urllib3 import HTTPHeaderDict

        header_dict = HTTPHeaderDict()
        for name, value in headers:
            header_dict.add(name, value)
        started = time.monotonic()
        try:
            response = self._pool_manager().request("GET", url, headers=header_dict, timeout=timeout, retries=False,
                                                    redirect=False, preload_content=False)
        except Exception:
            log_request("GET", url, None, "", started)
            raise
        log_request("GET", url, response.status, response.reason or "", started)
        return response

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
    if request_log.isEnabledFor(logging.INFO):
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


def _pool_manager(connection: Connection, context: ssl.SSLContext):
    import urllib3

    options = {"ssl_context": context, "maxsize": POOL_SIZE, "block": False}
    if connection.tls.insecure:
        options.update(cert_reqs="CERT_NONE", assert_hostname=False)
        # The user chose insecure-skip-tls-verify; kubectl does not nag about it either.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    if connection.tls.server_name:
        options["server_hostname"] = connection.tls.server_name
    proxy = connection.proxy
    if proxy is None:
        return urllib3.PoolManager(**options)
    parts = urlsplit(proxy)
    if parts.scheme.startswith("socks5"):
        from urllib3.contrib.socks import SOCKSProxyManager

        # Go's SOCKS5 dialer hands the host name to the proxy: socks5h in urllib3's terms.
        remote = parts._replace(scheme="socks5h").geturl()
        return SOCKSProxyManager(remote, **options)
    proxy_headers = _proxy_authorization(proxy)
    return urllib3.ProxyManager(proxy, proxy_headers=proxy_headers or None,
                                proxy_ssl_context=ssl.create_default_context() if parts.scheme == "https" else None,
                                **options)


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
    parts = urlsplit(proxy)
    secure = parts.scheme == "https"
    sock = socket.create_connection((parts.hostname, parts.port or (443 if secure else 80)), timeout=timeout)
    if secure:  # Go checks an https proxy's certificate against the system's CAs (SSL_CERT_FILE too)
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
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


class ProxyRefused(OSError):
    """The proxy answered CONNECT with something else than 200."""

    def __init__(self, proxy: str, answer: str):
        super().__init__(f"the proxy {proxy} refused the tunnel ({answer[:80]})")
        self.proxy = proxy
