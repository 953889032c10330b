"""The server side of RFC 6455 framing, just what exec needs (pure logic, no sockets)."""

from __future__ import annotations

import base64
import hashlib
import struct

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NORMAL_CLOSURE = 1000
_MAX_MESSAGE = 64 * 1024 * 1024


class ProtocolError(Exception):
    """The client broke the framing rules; the connection is closed."""


def accept_key(client_key: str) -> str:
    """`Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`."""
    return base64.b64encode(hashlib.sha1((client_key.strip() + _GUID).encode()).digest()).decode()


def encode_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One final, unmasked frame (servers never mask)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


def close_frame(code: int = NORMAL_CLOSURE) -> bytes:
    return encode_frame(CLOSE, struct.pack("!H", code))


class MessageReader:
    """Feed it bytes from the socket; it yields whole messages and control frames.

    Data messages may arrive fragmented (a TEXT/BINARY frame, then CONTINUATION frames), with
    control frames in between; each is yielded as (opcode, payload) once complete.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._opcode: int | None = None
        self._fragments: list[bytes] = []

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        out: list[tuple[int, bytes]] = []
        while True:
            frame = self._next_frame()
            if frame is None:
                return out
            fin, opcode, payload = frame
            if opcode >= CLOSE:
                if not fin:
                    raise ProtocolError("fragmented control frame")
                out.append((opcode, payload))
            elif opcode == CONTINUATION:
                if self._opcode is None:
                    raise ProtocolError("continuation frame without a message")
                self._fragments.append(payload)
                if fin:
                    out.append((self._opcode, b"".join(self._fragments)))
                    self._opcode, self._fragments = None, []
            elif fin:
                out.append((opcode, payload))
            else:
                self._opcode, self._fragments = opcode, [payload]

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        fin, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
        masked, length = bool(buf[1] & 0x80), buf[1] & 0x7F
        offset = 2
        if length == 126:
            if len(buf) < 4:
                return None
            length, offset = struct.unpack_from("!H", buf, 2)[0], 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, offset = struct.unpack_from("!Q", buf, 2)[0], 10
        if length > _MAX_MESSAGE:
            raise ProtocolError("frame too large")
        if not masked:
            raise ProtocolError("client frames must be masked")
        end = offset + 4 + length
        if len(buf) < end:
            return None
        mask = bytes(buf[offset:offset + 4])
        payload = _unmask(bytes(buf[offset + 4:end]), mask)
        del buf[:end]
        return fin, opcode, payload


def _unmask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return data
    repeated = (mask * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(data), "big")
