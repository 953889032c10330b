"""The curl command sent into the client pod, and the parser of what it prints.

One exec runs ONE curl process that makes every request of the probe: one exec per request
is far too slow. The command is an argument vector, never a shell line, so nothing in the URL,
method or headers is interpreted by a shell.

Needs curl >= 7.75 in the client pod (`%{exitcode}`), >= 7.84 for continuous mode (`--rate`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from kubectl_waypoint.errors import BadInput, Inconclusive

MIN_CURL = "7.75"
MIN_CURL_CONTINUOUS = "7.84"

# RFC 9110 token: the grammar of methods and header names. It contains `$`, `&`, `|` and
# backquote, which is fine: no shell ever sees them.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*)", re.DOTALL)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_NONCE = re.compile(r"[0-9a-f]{32,}")
_WRITE_OUT_FIELDS = "%{http_code} %{exitcode} %{size_download} %{time_total} %{num_connects}"


@dataclass(frozen=True)
class Response:
    """What one transfer produced: `status` is "000" when no HTTP response arrived."""

    status: str
    exit_code: int
    body: bytes
    time_total_s: float
    new_connection: bool


class CurlTooOld(Inconclusive):
    """The client pod's curl lacks a feature the probe needs: no usable client pod (exit 4)."""


class CurlOutputError(Inconclusive):
    """curl's output cannot be read back unambiguously (for example a TTY mangled the stream)."""


def build_curl_argv(
    url: str,
    count: int,
    *,
    nonce: str,
    method: str = "GET",
    headers: Sequence[str] = (),
    timeout_s: float = 5.0,
    interval_s: float | None = None,
) -> list[str]:
    """The argv of one curl process making `count` requests to `url`, each on a new connection.

    Repetition uses curl's own URL globbing: the user's URL is glob-escaped and a range is
    appended as a fragment (`#[1-N]`), which curl never sends. The argv therefore stays the
    same size whatever the count (repeating `--url` would grow the exec request line by the
    URL's length per request, beyond what API-server front ends accept for long runs), and
    the request target reaches the server byte for byte, with `{}`/`[]` taken literally.
    The user's own fragment is dropped; curl would not send it either.

    `Connection: close` makes the server close after each response, so curl opens a new
    connection for every transfer (ztunnel picks a waypoint per connection);
    `%{num_connects}` proves it per transfer. `-q` (first) ignores any .curlrc in the pod,
    `--proto` keeps curl on HTTP(S), `--path-as-is` keeps `..` segments.
    Proxy variables in the pod's environment are honoured on purpose (no `--noproxy`): they
    are the pod's own business and its applications' traffic takes the same path; in an
    ambient pod ztunnel captures the traffic wherever curl connects. The simulated mesh relies
    on it: it plays the mesh as the exec'd curl's proxy, and could not see the request otherwise. With `interval_s`, `--rate` paces the requests (curl >= 7.84).
    Each body is followed by a write-out line starting with the per-run `nonce`, which is
    never sent on the wire, so no response body can contain it.
    """
    if not _NONCE.fullmatch(nonce):
        raise ValueError("nonce must be at least 32 lowercase hex digits from a secure RNG")
    if count < 1:
        raise BadInput(f"--count {count} is not a positive number; send at least 1 request.")
    if not timeout_s >= 0.001:  # curl's --max-time 0 would mean no limit at all
        raise BadInput(f"Request timeout {timeout_s}s is too short; pass at least 1ms.")
    argv = [
        "curl", "-q", "--silent", "--show-error", "--no-buffer",
        "--proto", "=http,https", "--proto-default", "http", "--path-as-is",
        "--max-time", _seconds(timeout_s),
        "--request", validate_method(method),
        "--header", "Connection: close",
    ]
    for header in headers:
        argv += ["--header", validate_header(header)]
    if interval_s is not None:
        argv += ["--rate", _rate(interval_s)]
    argv += ["--write-out", f"\\n{nonce} {_WRITE_OUT_FIELDS}\\n"]
    argv += ["--url", f"{glob_escape(validate_url(url).split('#', 1)[0])}#[1-{count}]"]
    return argv


def validate_url(url: str) -> str:
    """The URL unchanged, or BadInput: HTTP(S) only, no whitespace or control characters."""
    if not url:
        raise BadInput("The URL is empty; pass one such as http://productpage:9080/productpage.")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise BadInput(f"URL {url!r} contains whitespace or control characters; percent-encode them (%20).")
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        raise BadInput(f"URL {url!r} is not HTTP; the probe sends only http:// or https:// requests.")
    return url


def validate_method(method: str) -> str:
    """The method unchanged, or BadInput when it is not an HTTP token or is HEAD."""
    if not _TOKEN.fullmatch(method):
        raise BadInput(f"Method {method!r} is not a valid HTTP method; use a word such as GET or POST.")
    if method.upper() == "HEAD":
        # curl -X HEAD waits for a body that never comes, and -I has no body to classify.
        raise BadInput("Method HEAD is not supported by the probe; use GET.")
    return method


def validate_header(header: str) -> str:
    """The header unchanged, or BadInput: `Name: value`, one line, not a curl `@file`."""
    match = _HEADER.fullmatch(header)
    if not match or any(ch in header for ch in "\r\n\0"):
        raise BadInput(f"Header {header!r} is not a single 'Name: value' line; pass it as -H 'Name: value'.")
    name, value = match.groups()
    if not value.strip():
        # curl treats "Name:" as "remove this header", not as an empty header.
        raise BadInput(f"Header {name!r} has an empty value; give it a value.")
    if name.lower() == "connection":
        raise BadInput("Header 'Connection' is set by the probe (each request needs a new connection); remove it.")
    return header


def glob_escape(url: str) -> str:
    r"""`url` with curl's glob characters escaped, so curl sends `{`, `}`, `[`, `]` literally.

    curl's globber treats `\` as an escape only before these four characters, so other
    backslashes need no escaping.
    """
    return re.sub(r"([{}\[\]])", r"\\\1", url)


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _rate(interval_s: float) -> str:
    """curl's `--rate` as requests per hour: integer per-hour counts keep sub-second precision."""
    per_hour = round(3600 / interval_s) if interval_s > 0 else 0
    if not 1 <= per_hour <= 3_600_000:
        raise BadInput(f"--interval {interval_s}s is out of range; use between 1ms and 1h.")
    return f"{per_hour}/h"


class CurlOutputParser:
    """Turns the bytes curl prints into Responses, incrementally, as an exec stream delivers them.

    A transfer is recognised only by the write-out line that follows it: a newline, the
    secret nonce, then five fields. Everything before that marker and after the previous
    write-out line is the transfer's output; its last `size_download` bytes are the body, so
    any stray bytes before it (curl error text on a merged stream) cannot leak into it.
    A transfer cut before its write-out line is never returned: it counts as lost.
    """

    def __init__(self, nonce: str):
        self._marker = b"\n" + nonce.encode("ascii") + b" "
        self._buffer = bytearray()
        self._search_from = 0

    def feed(self, data: bytes) -> list[Response]:
        """The transfers completed by this chunk of output, in order."""
        self._buffer += data
        responses = []
        while True:
            start = self._buffer.find(self._marker, self._search_from)
            if start < 0:
                self._search_from = max(0, len(self._buffer) - len(self._marker) + 1)
                return responses
            fields_at = start + len(self._marker)
            end = self._buffer.find(b"\n", fields_at)
            if end < 0:
                self._search_from = start
                return responses
            responses.append(_response(bytes(self._buffer[:start]), bytes(self._buffer[fields_at:end])))
            del self._buffer[: end + 1]
            self._search_from = 0

    def finish(self) -> int:
        """Bytes left after the last complete transfer: output of a transfer that was cut off."""
        return len(self._buffer)


def _response(output: bytes, fields: bytes) -> Response:
    parts = fields.split(b" ")
    if b"%{" in fields or (len(parts) == 5 and parts[1] == b""):
        # curl before 7.75 prints nothing for the unknown %{exitcode} (or, older still, the literal text).
        raise CurlTooOld(
            f"curl in the client pod does not know %{{exitcode}}; use a client pod with curl {MIN_CURL} or newer."
        )
    try:
        status, exit_code, size, time_total, connects = (part.decode("ascii") for part in parts)
        size_download = int(size)
        response = Response(
            status=status,
            exit_code=int(exit_code),
            body=output[len(output) - size_download:] if size_download else b"",
            time_total_s=float(time_total.replace(",", ".")),
            new_connection=int(connects) > 0,
        )
        if not (len(status) == 3 and status.isdigit()) or size_download < 0:
            raise ValueError(status)
    except (ValueError, UnicodeDecodeError):
        raise CurlOutputError(
            f"curl printed an unreadable result line {fields[:80]!r}; run the probe without a TTY."
        ) from None
    if len(output) < size_download:
        raise CurlOutputError(
            f"curl's output lost bytes of a response ({len(output)} of {size_download}); run the probe without a TTY."
        )
    return response
