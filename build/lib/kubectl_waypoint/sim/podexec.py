"""`pods/exec` over WebSocket: the channel protocol, the status message, and pluggable behaviour.

What a command does is decided by an exec handler, `fn(ExecRequest, ExecStreams) -> exit code`.
The default one answers from a scenario's `exec:` rules. The session speaks
`v5.channel.k8s.io` / `v4.channel.k8s.io`: binary messages whose first byte is the channel
(0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize); v5 adds `[255, channel]` to close a channel.
All socket I/O stays on the connection's thread (an SSL socket must not be shared); the handler
runs on its own thread and hands output over through a queue.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import websocket as ws

log = logging.getLogger(__name__)

V5_PROTOCOL = "v5.channel.k8s.io"
V4_PROTOCOL = "v4.channel.k8s.io"
PROTOCOLS = (V5_PROTOCOL, V4_PROTOCOL)  # server preference

STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE_SIGNAL = 0, 1, 2, 3, 4, 255
_HANG_UP = -2  # not a channel: the session drops the connection without an exit status

_CLOSE_GRACE_SECONDS = 2.0


class ExecutableNotFound(Exception):
    """Raise from an exec handler when the container has no such program."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class ExecRequest:
    """One `kubectl exec`: which pod and container, and the command line."""

    namespace: str
    pod: dict
    container: str
    argv: list[str]
    stdin: bool = False
    tty: bool = False

    @property
    def pod_name(self) -> str:
        return self.pod["metadata"]["name"]

    @property
    def service_account(self) -> str:
        """The calling pod's service account (its mesh identity is ns/<namespace>/sa/<this>)."""
        spec = self.pod.get("spec", {})
        return spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"

    @property
    def labels(self) -> dict:
        return self.pod.get("metadata", {}).get("labels") or {}


class ExecStreams:
    """What a handler reads and writes; output is sent to the client as soon as it is written."""

    def __init__(self, send: Callable[[int, bytes], None], stdout: bool, stderr: bool, tty: bool, stdin: bool):
        self._send = send
        self._stdout, self._stderr, self._tty = stdout, stderr, tty
        self._stdin_open = stdin
        self._stdin = bytearray()
        self._stdin_ready = threading.Condition()
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        """True once the client went away: a long-running handler should stop."""
        return self._closed.is_set()

    def write_stdout(self, data: bytes | str) -> None:
        if self._stdout and data:
            self._send(STDOUT, data.encode() if isinstance(data, str) else bytes(data))

    def write_stderr(self, data: bytes | str) -> None:
        if data and (self._stderr or self._tty):
            # With a TTY the container has one output stream, as in the real thing.
            self._send(STDOUT if self._tty else STDERR, data.encode() if isinstance(data, str) else bytes(data))

    def hang_up(self) -> None:
        """Drop the connection without an exit status, as a failing node or load balancer does."""
        self._send(_HANG_UP, b"")

    def read_stdin(self) -> bytes:
        """All of stdin, waiting for the client to close it (b"" when stdin was not requested)."""
        with self._stdin_ready:
            self._stdin_ready.wait_for(lambda: not self._stdin_open)
            return bytes(self._stdin)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Sleep until the client goes away or `timeout` passes; True if it went away."""
        return self._closed.wait(timeout)

    # Called by the session.
    def _feed_stdin(self, data: bytes) -> None:
        with self._stdin_ready:
            if self._stdin_open:
                self._stdin += data

    def _end_stdin(self) -> None:
        with self._stdin_ready:
            self._stdin_open = False
            self._stdin_ready.notify_all()

    def _mark_closed(self) -> None:
        self._closed.set()
        self._end_stdin()


ExecHandler = Callable[[ExecRequest, ExecStreams], int]


@dataclass(frozen=True)
class ExecRule:
    """A canned answer for matching commands: argv is a prefix, each element an fnmatch glob."""

    argv: tuple[str, ...]
    namespace: str | None = None
    pod: str | None = None
    container: str | None = None
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    not_found: bool = False

    @classmethod
    def from_dict(cls, doc: dict) -> ExecRule:
        known = {"argv", "namespace", "pod", "container", "stdout", "stderr", "exitCode", "notFound"}
        unknown = set(doc) - known
        if unknown:
            raise ValueError(f"unknown keys in exec rule: {', '.join(sorted(unknown))}")
        return cls(argv=tuple(str(a) for a in doc.get("argv") or ()), namespace=doc.get("namespace"),
                   pod=doc.get("pod"), container=doc.get("container"), stdout=doc.get("stdout", ""),
                   stderr=doc.get("stderr", ""), exit_code=int(doc.get("exitCode", 0)),
                   not_found=bool(doc.get("notFound", False)))

    def matches(self, request: ExecRequest) -> bool:
        if self.namespace is not None and self.namespace != request.namespace:
            return False
        if self.pod is not None and not fnmatch.fnmatchcase(request.pod_name, self.pod):
            return False
        if self.container is not None and self.container != request.container:
            return False
        if len(request.argv) < len(self.argv):
            return False
        return all(fnmatch.fnmatchcase(arg, pattern) for arg, pattern in zip(request.argv, self.argv))


def rules_handler(rules: Sequence[ExecRule]) -> ExecHandler:
    """An exec handler answering from `rules` (first match wins); no match: executable not found."""

    def handle(request: ExecRequest, streams: ExecStreams) -> int:
        for rule in rules:
            if rule.matches(request):
                if rule.not_found:
                    break
                streams.write_stdout(rule.stdout)
                streams.write_stderr(rule.stderr)
                return rule.exit_code
        raise ExecutableNotFound(request.argv[0] if request.argv else "")

    return handle


def _compact(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def success_status() -> bytes:
    return _compact({"metadata": {}, "status": "Success"})


def exit_code_status(code: int) -> bytes:
    return _compact({"metadata": {}, "status": "Failure",
                     "message": f"command terminated with non-zero exit code: command terminated with exit code {code}",
                     "reason": "NonZeroExitCode",
                     "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}})


def internal_error_status(cause: str) -> bytes:
    cause = f"error executing command in container: {cause}"
    return _compact({"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {cause}",
                     "reason": "InternalError", "details": {"causes": [{"message": cause}]}, "code": 500})


def not_found_cause(request: ExecRequest, name: str) -> str:
    """containerd's words for a missing program, with a stable exec id."""
    exec_id = hashlib.sha256(f"{request.namespace}/{request.pod_name}/{request.argv}".encode()).hexdigest()
    return (f'failed to exec in container: failed to start exec "{exec_id}": OCI runtime exec failed: exec failed: '
            f'unable to start container process: exec: "{name}": executable file not found in $PATH: unknown')


def negotiate(offered: str) -> str | None:
    """The subprotocol to answer from a `Sec-WebSocket-Protocol` header, by server preference."""
    names = {p.strip().lower() for p in offered.split(",") if p.strip()}
    return next((p for p in PROTOCOLS if p in names), None)


@dataclass
class ExecSession:
    """Runs one exec over an upgraded connection until the status is sent or the client leaves."""

    sock: socket.socket
    protocol: str
    request: ExecRequest
    handler: ExecHandler
    stdout: bool
    stderr: bool
    on_exit: Callable[[int], None] = lambda code: None  # told before the client hears the status
    exit_code: int | None = None
    _outbox: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)

    def run(self) -> int | None:
        """Serve the session; returns the handler's exit code (None if it failed or is still running)."""
        wake_reader, wake_writer = socket.socketpair()
        streams = ExecStreams(lambda channel, data: self._post(wake_writer, channel, data),
                              self.stdout, self.stderr, self.request.tty, self.request.stdin)
        try:
            # Like the kubelet: an empty message on the first writable channel says "connected".
            first = STDOUT if self.stdout else STDERR if self.stderr else STATUS
            self._send_message(first, b"")
            worker = threading.Thread(target=self._work, args=(streams, wake_writer), daemon=True,
                                      name=f"sim-exec-{self.request.pod_name}")
            worker.start()
            if self._serve(streams, wake_reader):
                self._await_client_close()
        except (OSError, ws.ProtocolError) as exc:
            log.debug("exec session ended: %s", exc)
        finally:
            streams._mark_closed()
            wake_reader.close()
            wake_writer.close()
        return self.exit_code

    def _post(self, wake: socket.socket, channel: int, data: bytes) -> None:
        self._outbox.put((channel, data))
        try:
            wake.send(b"x")
        except OSError:
            pass  # the session is over; output written after that is dropped

    def _work(self, streams: ExecStreams, wake: socket.socket) -> None:
        try:
            code = self.handler(self.request, streams)
            self.exit_code = int(code or 0)
            self.on_exit(self.exit_code)
            status = success_status() if self.exit_code == 0 else exit_code_status(self.exit_code)
        except ExecutableNotFound as exc:
            status = internal_error_status(not_found_cause(self.request, exc.name))
        except Exception as exc:  # a broken handler must still end the client's exec cleanly
            log.debug("exec handler failed", exc_info=True)
            status = internal_error_status(f"{type(exc).__name__}: {exc}")
        self._post(wake, -1, status)

    def _serve(self, streams: ExecStreams, wake: socket.socket) -> bool:
        """Pump output and client messages; True when the status went out, False if the client left."""
        reader = ws.MessageReader()
        while True:
            while True:
                try:
                    channel, data = self._outbox.get_nowait()
                except queue.Empty:
                    break
                if channel == -1:
                    self._send_message(STATUS, data)
                    self.sock.sendall(ws.close_frame())
                    return True
                if channel == _HANG_UP:
                    return False
                self._send_message(channel, data)
            if not self._pending():
                readable, _, _ = select.select([self.sock, wake], [], [])
                if wake in readable:
                    wake.recv(65536)
                if self.sock not in readable:
                    continue
            data = self._recv()
            if data is None:
                continue
            if not data:
                return False
            for opcode, payload in reader.feed(data):
                if not self._on_message(opcode, payload, streams):
                    return False

    def _on_message(self, opcode: int, payload: bytes, streams: ExecStreams) -> bool:
        if opcode == ws.PING:
            self.sock.sendall(ws.encode_frame(ws.PONG, payload))
        elif opcode == ws.CLOSE:
            self.sock.sendall(ws.encode_frame(ws.CLOSE, payload[:2]))
            return False
        elif opcode in (ws.BINARY, ws.TEXT) and payload:
            channel = payload[0]
            if channel == CLOSE_SIGNAL and self.protocol == V5_PROTOCOL:
                if payload[1:2] == bytes([STDIN]):
                    streams._end_stdin()
            elif channel == STDIN:
                streams._feed_stdin(payload[1:])
        return True

    def _await_client_close(self) -> None:
        """After our close frame, give the client a moment to answer with its own."""
        reader = ws.MessageReader()
        deadline = time.monotonic() + _CLOSE_GRACE_SECONDS
        while (remaining := deadline - time.monotonic()) > 0:
            if not self._pending():
                readable, _, _ = select.select([self.sock], [], [], remaining)
                if not readable:
                    return
            data = self._recv()
            if not data:
                return
            if any(opcode == ws.CLOSE for opcode, _ in reader.feed(data)):
                return

    def _send_message(self, channel: int, data: bytes) -> None:
        self.sock.sendall(ws.encode_frame(ws.BINARY, bytes([channel]) + data))

    def _pending(self) -> bool:
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0

    def _recv(self) -> bytes | None:
        """Bytes from the client, b"" at end of stream, None if a TLS record is still incomplete."""
        try:
            return self.sock.recv(65536)
        except (ssl.SSLWantReadError, TimeoutError):
            return None
