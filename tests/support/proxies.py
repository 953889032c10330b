"""Small real proxies for tests: HTTP CONNECT and SOCKS5 (no auth), loopback only, bounded.

Each proxy listens on 127.0.0.1, tunnels to loopback targets only, and remembers every tunnel
it opened as (target host, target port, local port of its connection to the target). The
simulated API server records each request's peer address, so `carried(record)` tells whether
a request came through this proxy. `refuse=True` makes it turn every tunnel down.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import struct
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubectl_waypoint.kube.transport import relay

MAX_TUNNELS = 500  # a test that needs more is looping
IDLE_SECONDS = 30


@dataclass(frozen=True)
class Tunnel:
    host: str
    port: int
    local_port: int  # our end of the connection to the target: the server sees it as the peer


class _Proxy:
    def __init__(self, refuse: bool = False):
        self.refuse = refuse
        self.tunnels: list[Tunnel] = []
        self.refused: list[str] = []
        self.forwarded: list[str] = []  # request lines of absolute-form requests (ConnectProxy)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=type(self).__name__)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def carried(self, record) -> bool:
        """Whether the simulated server's request record arrived through one of our tunnels."""
        with self._lock:
            return any(record.peer and tunnel.local_port == record.peer[1] for tunnel in self.tunnels)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            with self._lock:
                full = len(self.tunnels) + len(self.refused) >= MAX_TUNNELS
            if full:
                client.close()
                continue
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _open(self, host: str, port: int) -> socket.socket | None:
        """A connection to the target, loopback only (tests never reach anything else)."""
        try:
            address = socket.gethostbyname(host)
        except OSError:
            return None
        if self.refuse or not ipaddress.ip_address(address).is_loopback:
            with self._lock:
                self.refused.append(f"{host}:{port}")
            return None
        try:
            upstream = socket.create_connection((address, port), timeout=5)
        except OSError:
            return None
        with self._lock:
            self.tunnels.append(Tunnel(host, port, upstream.getsockname()[1]))
        return upstream

    def _handle(self, client: socket.socket) -> None:
        raise NotImplementedError


class ConnectProxy(_Proxy):
    """An HTTP proxy: CONNECT (what clients use for an https:// server), and a request in absolute
    form (`GET http://host:port/path`, what Go sends for an http:// server), forwarded and logged in
    `forwarded`.

    With `certificate=(cert, key)` it is an https:// proxy: clients speak TLS to it first.
    """

    def __init__(self, refuse: bool = False, certificate: tuple[str, str] | None = None):
        super().__init__(refuse)
        self._tls = None
        if certificate:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*certificate)

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(5)
        if self._tls is not None:
            try:
                client = self._tls.wrap_socket(client, server_side=True)
            except (OSError, ssl.SSLError):
                client.close()
                return
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < 16384:
                chunk = client.recv(4096)
                if not chunk:
                    client.close()
                    return
                head += chunk
        except OSError:
            client.close()
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = request_line.partition(" ")
        target = rest.partition(" ")[0]
        if method != "CONNECT" and target.startswith("http://"):
            self._forward(client, head, request_line, target)
            return
        host, _, port = target.rpartition(":")
        upstream = self._open(host.strip("[]"), int(port)) if method == "CONNECT" and port.isdigit() else None
        if upstream is None:
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            client.close()
            return
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        relay(client, upstream, IDLE_SECONDS)

    def _forward(self, client: socket.socket, head: bytes, request_line: str, target: str) -> None:
        """Hand an absolute-form request to its server in origin form; relay the connection after it."""
        parts = urlsplit(target)
        upstream = self._open(parts.hostname or "", parts.port or 80)
        if upstream is None:
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            client.close()
            return
        with self._lock:
            self.forwarded.append(request_line)
        origin = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        method, _, rest = request_line.partition(" ")
        # One request per connection (the server closes after it), so every request of a kept-alive
        # client connection comes through here and is rewritten, never relayed in absolute form.
        first = f"{method} {origin} {rest.rpartition(' ')[2]}\r\nConnection: close".encode("latin-1")
        fields, _, body = head[len(request_line.encode("latin-1")):].partition(b"\r\n\r\n")
        kept = [line for line in fields.split(b"\r\n") if line and not line.lower().startswith(b"connection:")]
        upstream.sendall(first + b"".join(b"\r\n" + line for line in kept) + b"\r\n\r\n" + body)
        relay(client, upstream, IDLE_SECONDS)


class Socks5Proxy(_Proxy):
    """A SOCKS5 proxy (RFC 1928), no authentication, CONNECT only, names resolved here."""

    @property
    def url(self) -> str:
        return f"socks5://127.0.0.1:{self.port}"

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(5)
        try:
            version, count = _recv_exact(client, 2)
            methods = _recv_exact(client, count)
            if version != 5 or 0 not in methods:
                client.sendall(b"\x05\xff")
                client.close()
                return
            client.sendall(b"\x05\x00")
            _, command, _, kind = _recv_exact(client, 4)
            if kind == 1:
                host = socket.inet_ntoa(_recv_exact(client, 4))
            elif kind == 3:
                host = _recv_exact(client, _recv_exact(client, 1)[0]).decode()
            elif kind == 4:
                host = socket.inet_ntop(socket.AF_INET6, _recv_exact(client, 16))
            else:
                raise OSError("bad address type")
            port = struct.unpack("!H", _recv_exact(client, 2))[0]
        except OSError:
            client.close()
            return
        upstream = self._open(host, port) if command == 1 else None
        if upstream is None:
            client.sendall(b"\x05\x02\x00\x01" + b"\x00" * 6)  # "connection not allowed by ruleset"
            client.close()
            return
        bound_host, bound_port = upstream.getsockname()[:2]
        client.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(bound_host) + struct.pack("!H", bound_port))
        relay(client, upstream, IDLE_SECONDS)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data
