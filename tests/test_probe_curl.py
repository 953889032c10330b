"""The curl argv sent into the client pod, and the parsing of curl's output.

The loopback tests run the real curl with the argv we build (no shell anywhere) against an
HTTP server started here, which records what arrived.
"""

from __future__ import annotations

import http.server
import re
import shutil
import subprocess
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubectl_waypoint.errors import BadInput, Inconclusive
from kubectl_waypoint.probe.curl import (
    CurlOutputError,
    CurlOutputParser,
    CurlTooOld,
    Response,
    build_curl_argv,
    glob_escape,
)

NONCE = "0123456789abcdef0123456789abcdef"
OTHER_NONCE = "fedcba9876543210fedcba9876543210"


def trailer(status="200", exit_code=0, size=0, time_total="0.012345", connects=1, nonce=NONCE) -> bytes:
    return f"\n{nonce} {status} {exit_code} {size} {time_total} {connects}\n".encode()


def transfer(body: bytes, **fields) -> bytes:
    return body + trailer(size=len(body), **fields)


def parse_all(data: bytes) -> tuple[list[Response], int]:
    parser = CurlOutputParser(NONCE)
    return parser.feed(data), parser.finish()


# --- argv -------------------------------------------------------------------------------------


def argv_value(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == option]


def test_one_curl_process_makes_every_request_on_a_new_connection():
    argv = build_curl_argv("http://productpage:9080/productpage", 450, nonce=NONCE)
    assert argv[:2] == ["curl", "-q"]  # -q must come first to ignore a .curlrc in the pod
    assert argv_value(argv, "--url") == ["http://productpage:9080/productpage#[1-450]"]
    assert argv_value(argv, "--header") == ["Connection: close"]
    assert argv_value(argv, "--max-time") == ["5"]
    assert "--rate" not in argv


def test_write_out_line_starts_with_the_nonce_and_carries_the_fields_the_parser_reads():
    argv = build_curl_argv("http://reviews:9080/", 1, nonce=NONCE)
    assert argv_value(argv, "--write-out") == [
        f"\\n{NONCE} %{{http_code}} %{{exitcode}} %{{size_download}} %{{time_total}} %{{num_connects}}\\n"
    ]


def test_continuous_mode_paces_requests_with_curl_rate_per_hour():
    assert argv_value(build_curl_argv("http://a/", 10, nonce=NONCE, interval_s=0.5), "--rate") == ["7200/h"]
    assert argv_value(build_curl_argv("http://a/", 10, nonce=NONCE, interval_s=60), "--rate") == ["60/h"]
    with pytest.raises(BadInput, match="--interval"):
        build_curl_argv("http://a/", 10, nonce=NONCE, interval_s=0)


def test_url_starting_with_a_dash_is_a_value_never_an_option():
    argv = build_curl_argv("-o/etc/passwd", 1, nonce=NONCE)
    assert argv_value(argv, "--url") == ["-o/etc/passwd#[1-1]"]


def test_the_users_fragment_is_dropped_as_curl_never_sends_it():
    argv = build_curl_argv("http://a/x#section", 2, nonce=NONCE)
    assert argv_value(argv, "--url") == ["http://a/x#[1-2]"]


def test_method_and_headers_are_passed_as_given():
    argv = build_curl_argv("http://a/", 1, nonce=NONCE, method="POST", headers=["X-Test: a b", "Host: b"])
    assert argv_value(argv, "--request") == ["POST"]
    assert argv_value(argv, "--header") == ["Connection: close", "X-Test: a b", "Host: b"]


@pytest.mark.parametrize(
    "header",
    ["@/etc/passwd", "X-A: one\r\nX-B: two", "X-A: one\nX-B", "NoColon", "X-A:", "X-A:   ", "Bad Name: v",
     ": value", "X-A;", "Connection: keep-alive", "connection: close", "X-A: a\0b"],
)
def test_invalid_headers_are_rejected_with_one_sentence(header):
    with pytest.raises(BadInput) as error:
        build_curl_argv("http://a/", 1, nonce=NONCE, headers=[header])
    assert error.value.exit_code == 2
    assert error.value.message.count(". ") == 0 and error.value.message.endswith(".")


@pytest.mark.parametrize("method", ["", "GET POST", "GET\r\n", "HEAD", "head", "G(T"])
def test_invalid_methods_are_rejected(method):
    with pytest.raises(BadInput, match="Method"):
        build_curl_argv("http://a/", 1, nonce=NONCE, method=method)


@pytest.mark.parametrize(
    "url", ["", "http://a/ b", "http://a/\tb", "http://a/\nb", "file:///etc/passwd", "ftp://a/", "gopher://a/"]
)
def test_invalid_urls_are_rejected(url):
    with pytest.raises(BadInput, match="URL"):
        build_curl_argv(url, 1, nonce=NONCE)


def test_scheme_less_urls_are_accepted_as_the_procedure_writes_them():
    argv = build_curl_argv("productpage:9080/productpage", 1, nonce=NONCE)
    assert argv_value(argv, "--url") == ["productpage:9080/productpage#[1-1]"]
    assert argv_value(argv, "--proto-default") == ["http"]


def test_count_and_timeout_must_be_positive_and_the_nonce_unguessable():
    with pytest.raises(BadInput, match="--count"):
        build_curl_argv("http://a/", 0, nonce=NONCE)
    with pytest.raises(BadInput, match="timeout"):
        build_curl_argv("http://a/", 1, nonce=NONCE, timeout_s=0)
    with pytest.raises(ValueError):
        build_curl_argv("http://a/", 1, nonce="short")


def glob_unescape(text: str) -> str:
    return re.sub(r"\\([{}\[\]])", r"\1", text)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=10**6))
def test_any_url_is_rejected_or_sent_as_one_argv_element(url, count):
    try:
        argv = build_curl_argv(url, count, nonce=NONCE)
    except BadInput:
        return
    (value,) = argv_value(argv, "--url")
    assert argv.index(value) == len(argv) - 1
    assert value.endswith(f"#[1-{count}]")
    assert glob_unescape(value[: -len(f"#[1-{count}]")]) == url.split("#", 1)[0]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_header_is_rejected_or_appears_verbatim_as_one_argv_element(value):
    header = f"X-Probe: {value}"
    try:
        argv = build_curl_argv("http://a/", 1, nonce=NONCE, headers=[header])
    except BadInput:
        assert not value.strip() or any(ch in value for ch in "\r\n\0")
        return
    assert argv_value(argv, "--header") == ["Connection: close", header]


# --- parsing crafted output -------------------------------------------------------------------


def test_a_body_with_fake_markers_newlines_and_binary_stays_one_response():
    body = b"<html>reviews-v2\n" + trailer(nonce=OTHER_NONCE) + b"\x00\xff\n" + f"{NONCE[:8]} 500 0 1 0.1 1\n".encode()
    responses, rest = parse_all(transfer(body) + transfer(b"second"))
    assert [r.body for r in responses] == [body, b"second"]
    assert rest == 0


def test_empty_bodies_and_bodies_without_trailing_newline():
    responses, _ = parse_all(transfer(b"") + transfer(b"no newline") + transfer(b"\n\n"))
    assert [r.body for r in responses] == [b"", b"no newline", b"\n\n"]


def test_fields_become_status_exit_code_time_and_connection_evidence():
    (ok, reset, reused), _ = parse_all(
        transfer(b"hi", time_total="0.250000")
        + transfer(b"", status="000", exit_code=56)
        + transfer(b"x", connects=0)
    )
    assert (ok.status, ok.exit_code, ok.time_total_s, ok.new_connection) == ("200", 0, 0.25, True)
    assert (reset.status, reset.exit_code, reset.body) == ("000", 56, b"")
    assert reused.new_connection is False


def test_stray_text_before_a_body_is_cut_off_by_its_announced_size():
    # A merged stderr puts curl's error text into the stream; size_download keeps it out of the body.
    data = b"curl: (28) Operation timed out\n" + b"partial" + trailer(status="200", exit_code=28, size=7)
    (response,), _ = parse_all(data)
    assert response.body == b"partial"


def test_output_shorter_than_the_announced_size_is_refused():
    with pytest.raises(CurlOutputError, match="lost bytes"):
        parse_all(b"abc" + trailer(size=10))


def test_a_stream_cut_mid_transfer_counts_the_transfer_as_lost():
    whole = transfer(b"first") + transfer(b"second body")
    for cut in range(len(transfer(b"first")), len(whole)):
        responses, rest = parse_all(whole[:cut])
        assert [r.body for r in responses] == [b"first"]
        assert rest == cut - len(transfer(b"first"))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=60), min_size=1, max_size=6),
    st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_feeding_in_arbitrary_chunks_gives_the_same_responses(bodies, cuts):
    data = b"".join(transfer(body) for body in bodies)
    parser = CurlOutputParser(NONCE)
    responses, at = [], 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]:
        responses += parser.feed(data[at:cut])
        at = cut
    assert [r.body for r in responses] == bodies
    assert parser.finish() == 0


@pytest.mark.parametrize(
    "line",
    [f"\n{NONCE} 200  5 0.1 1\n", f"\n{NONCE} 200 %{{exitcode}} 5 0.1 1\n"],
    ids=["curl-7.7x-prints-nothing", "literal-variable"],
)
def test_curl_without_exitcode_is_reported_as_too_old(line):
    with pytest.raises(CurlTooOld, match="7.75") as error:
        parse_all(b"hello" + line.encode())
    assert isinstance(error.value, Inconclusive) and error.value.exit_code == 4


@pytest.mark.parametrize("fields", ["200 0 5 0.1", "2000 0 5 0.1 1", "200 x 5 0.1 1", "200 0 -1 0.1 1"])
def test_unreadable_result_lines_are_refused(fields):
    with pytest.raises(CurlOutputError):
        parse_all(b"hello" + f"\n{NONCE} {fields}\n".encode())


# --- the real curl against a loopback server ---------------------------------------------------

CURL = shutil.which("curl")


def curl_version() -> tuple[int, ...]:
    out = subprocess.run([CURL, "--version"], capture_output=True, text=True).stdout
    return tuple(int(part) for part in out.split()[1].split(".")[:2])


needs_curl = pytest.mark.skipif(
    CURL is None or curl_version() < (7, 84), reason="needs curl >= 7.84 (exitcode, --rate)"
)


class RecordingServer:
    """HTTP/1.1 keep-alive server on loopback recording each raw request; answers `bodies` in turn."""

    def __init__(self, bodies: list[bytes]):
        self.requests: list[dict] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def __getattr__(self, name):
                if name.startswith("do_"):
                    return self.answer
                raise AttributeError(name)

            def answer(self):
                body = bodies[len(server.requests) % len(bodies)]
                server.requests.append(
                    {
                        "line": self.raw_requestline,
                        "headers": self.headers.items(),
                        "port": self.client_address[1],
                    }
                )
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def run_curl(argv: list[str]) -> list[Response]:
    completed = subprocess.run(argv, capture_output=True, timeout=30)  # a list: no shell, ever
    parser = CurlOutputParser(NONCE)
    responses = parser.feed(completed.stdout)
    assert parser.finish() == 0
    return responses


@needs_curl
def test_shell_metacharacters_are_sent_literally_and_run_nothing(tmp_path):
    pwned = tmp_path / "pwned"
    path = (
        f"/x$(touch${{IFS}}{pwned});`touch${{IFS}}{pwned}`|cat&&id'\"{{a,b}}[1-3]"
        f"?q=$(touch${{IFS}}{pwned})&r={{x}}[0-9]"
    )
    headers = [
        f"X-Cmd: $(touch {pwned}); `touch {pwned}` | cat && id",
        "X-Quotes: 'single' \"double\" {a,b} [1-3] * ? ~ > out < in",
        "Accept: */*",
    ]
    with RecordingServer([b"ok"]) as server:
        argv = build_curl_argv(server.url + path, 2, nonce=NONCE, headers=headers, method="G$T|&`x`")
        responses = run_curl([CURL] + argv[1:])
    assert len(responses) == 2 and {r.status for r in responses} == {"200"}
    for request in server.requests:
        assert request["line"] == f"G$T|&`x` {path} HTTP/1.1\r\n".encode()
        received = request["headers"]
        for header in headers:
            name, value = header.split(": ", 1)
            assert (name, value) in received
    assert not pwned.exists()
    assert list(tmp_path.iterdir()) == []


@needs_curl
@settings(max_examples=25, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="#"), max_size=40))
def test_any_printable_path_arrives_byte_for_byte(path):
    with RecordingServer([b""]) as server:
        run_curl([CURL] + build_curl_argv(f"{server.url}/{path}", 1, nonce=NONCE)[1:])
    assert [r["line"] for r in server.requests] == [f"GET /{path} HTTP/1.1\r\n".encode()]


@needs_curl
def test_every_request_uses_a_new_connection_and_every_body_is_read_back_exactly():
    bodies = [
        b"<p>reviews-v1</p>\n",
        b"fake end of transfer" + trailer(nonce=OTHER_NONCE) + b"reviews-v2",
        b"",
        b"\x00\x01\xfe\xff\n\r\n binary",
        b"no trailing newline",
    ]
    with RecordingServer(bodies) as server:
        responses = run_curl([CURL] + build_curl_argv(server.url + "/", 10, nonce=NONCE)[1:])
    assert [r.body for r in responses] == bodies * 2
    assert all(r.new_connection and r.status == "200" and r.exit_code == 0 for r in responses)
    assert len({request["port"] for request in server.requests}) == 10  # ten client connections


@needs_curl
def test_failed_transfers_are_still_reported():
    with RecordingServer([b""]) as server:
        closed_port_url = server.url  # the server is closed again before curl runs
    responses = run_curl([CURL] + build_curl_argv(closed_port_url + "/", 2, nonce=NONCE, timeout_s=2)[1:])
    assert [(r.status, r.exit_code) for r in responses] == [("000", 7), ("000", 7)]


@needs_curl
def test_rate_paces_the_requests():
    with RecordingServer([b"ok"]) as server:
        started = time.monotonic()
        responses = run_curl([CURL] + build_curl_argv(server.url + "/", 3, nonce=NONCE, interval_s=0.1)[1:])
        elapsed = time.monotonic() - started
    assert len(responses) == 3
    assert elapsed >= 0.2


def test_glob_escape_marks_exactly_the_four_glob_characters():
    assert glob_escape("a{b}[c]\\d,e") == "a\\{b\\}\\[c\\]\\d,e"


@needs_curl
def test_an_ipv6_literal_survives_the_glob_escaping():
    argv = build_curl_argv("http://[::1]:1/x", 1, nonce=NONCE, timeout_s=2)
    (response,) = run_curl([CURL] + argv[1:])
    assert (response.status, response.exit_code) == ("000", 7)  # could not connect; 3 would be a malformed URL
