"""Nothing from the cluster reaches a terminal raw (issue 13).

The `hostile` scenario puts escape sequences, bidi overrides and control characters into a
Gateway condition, an image reference, a Service label, the Sail operator's status and istiod's
sync answer; the probe gets a 10 MB response body full of them. Every command and format runs
against it: text output (stdout and stderr) must hold no raw control or bidi character, JUnit
must parse, and JSON/YAML must keep the original strings.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET

import pytest
import yaml

import kubectl_waypoint.sim
from kubectl_waypoint.render.safe import BODY_LIMIT, cut, safe
from kubectl_waypoint.sim import SimCluster

# What must never reach a terminal: C0 but newline, DEL, C1, bidi marks/embeddings/overrides/isolates.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
GATEWAY = "shady\u202eydahs\u202c\x1b[2J"
BODY = ("\x1b]0;owned\x07\x1b[2J\x1b[32m PASS \x1b[0m\u202eSSAP\u202c\x9b\x7f\r" + "A" * 10_000_000).encode()


def gateway_message() -> str:
    """The Programmed condition's message, as the scenario file writes it."""
    with open(os.path.join(os.path.dirname(kubectl_waypoint.sim.__file__), "scenarios", "hostile.yaml")) as f:
        document = yaml.safe_load(f)
    (gateway,) = [o for o in document["objects"] if o["kind"] == "Gateway"]
    (programmed,) = [c for c in gateway["status"]["conditions"] if c["type"] == "Programmed"]
    return programmed["message"]


def assert_terminal_safe(text: str) -> None:
    found = UNSAFE.search(text)
    assert found is None, f"raw {found.group()!r} in text output near {text[max(0, found.start() - 60):found.end() + 20]!r}"


def answer_curl_with_a_hostile_body(sim: SimCluster):
    """Every curl in the cluster answers 200 with BODY (the write-out line as curl prints it)."""

    def handler(request, streams):
        if request.argv[:1] != ["curl"] or "--version" in request.argv:
            return sim.default_exec_handler(request, streams)
        write_out = request.argv[request.argv.index("--write-out") + 1]
        nonce = write_out.split("\\n")[1].split(" ")[0]
        count = int(re.search(r"#\[1-(\d+)\]$", request.argv[-1]).group(1))
        for _ in range(count):
            streams.write_stdout(BODY + f"\n{nonce} 200 0 {len(BODY)} 0.010 1\n".encode())
        return 0

    return handler


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    with SimCluster("hostile") as sim:
        yield sim, sim.write_kubeconfig(str(tmp_path_factory.mktemp("kube") / "config"), namespace="bookinfo")


def test_safe_escapes_every_control_and_bidi_character_and_keeps_the_rest():
    every = "".join(chr(c) for c in range(0x00, 0xA0)) + "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e" \
        "\u2066\u2067\u2068\u2069\u2028\u2029"
    shown = safe(every)
    assert_terminal_safe(shown)
    assert "\\x1b" in shown and "\\u202e" in shown and "\\x9b" in shown and "\\x7f" in shown and "\\n" in shown
    assert safe("bookinfo/waypoint é 日本 ✓") == "bookinfo/waypoint é 日本 ✓"
    assert cut("x" * 10_000_000) == "x" * BODY_LIMIT + f"... ({10_000_000 - BODY_LIMIT} more characters not shown)"


@pytest.mark.parametrize("fmt", ["table", "short"])
def test_verify_text_shows_the_hostile_strings_escaped(run_cli, hostile, fmt, tmp_path):
    _, kubeconfig = hostile
    junit = tmp_path / "junit.xml"
    result = run_cli("verify", "--kubeconfig", kubeconfig, "--skip", "routing,authorization", "-o", fmt,
                     "--junit-file", str(junit), expect=1)
    assert_terminal_safe(result.stdout)
    assert_terminal_safe(result.stderr)
    assert safe(GATEWAY) in result.stdout and safe(gateway_message()) in result.stdout
    assert "\\x1b]0;istiod says hi\\x07" in result.stdout  # istiod's rejected-push message, escaped
    assert "Error\\x1b[2J\\x1b[H" in result.stdout  # the Sail Istio state
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    root = ET.parse(junit).getroot()  # well-formed although the messages hold NUL, ESC and C1
    messages = " ".join(e.get("message", "") + (e.text or "") for e in root.iter() if e.tag in ("failure", "error"))
    assert safe(gateway_message()) in messages


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_verify_structured_output_keeps_the_original_strings(run_cli, hostile, fmt):
    _, kubeconfig = hostile
    result = run_cli("verify", "--kubeconfig", kubeconfig, "--skip", "routing,authorization", "-o", fmt, expect=1)
    assert_terminal_safe(result.stdout)  # the encoders escape them
    doc = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
    programmed = [c for c in doc["checks"] if c["id"] == "waypoint-programmed" and c["status"] == "fail"]
    assert programmed[0]["subject"] == f"bookinfo/{GATEWAY}"
    assert gateway_message() in programmed[0]["message"]


@pytest.mark.parametrize("fmt", ["table", "json", "yaml"])
def test_skew_escapes_a_hostile_image_reference(run_cli, hostile, fmt):
    _, kubeconfig = hostile
    result = run_cli("skew", "--kubeconfig", kubeconfig, "-o", fmt, expect=None)
    assert_terminal_safe(result.stdout + result.stderr)
    if fmt == "table":
        assert "1.28.6-asm-r3\\x1b]0;owned\\x07\\x1b[2J" in result.stdout
    else:
        doc = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
        cni = next(c for c in doc["components"] if c["kind"] == "istio-cni")
        assert cni["version"].endswith("\x1b]0;owned\x07\x1b[2J")


@pytest.mark.parametrize("fmt", ["table", "json", "yaml"])
def test_demo_of_the_hostile_scenario(run_cli, fmt):
    result = run_cli("demo", "--scenario", "hostile", "-o", fmt, expect=1)
    assert_terminal_safe(result.stdout + result.stderr)
    if fmt != "table":
        doc = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
        assert any(gateway_message() in c["message"] for c in doc["reports"][1]["checks"])


@pytest.mark.parametrize("fmt", ["table", "json", "yaml"])
def test_a_10_mb_hostile_response_body_is_cut_and_escaped(run_cli, hostile, fmt):
    sim, kubeconfig = hostile
    sim.set_exec_handler(answer_curl_with_a_hostile_body(sim))
    try:
        result = run_cli("probe", "--kubeconfig", kubeconfig, "-n", "curl", "deploy/curl",
                         "http://productpage.bookinfo:9080/productpage", "--count", "1", "--match", "(.*)",
                         "-o", fmt, expect=None)
    finally:
        sim.set_exec_handler(None)
    assert_terminal_safe(result.stdout + result.stderr)
    if fmt == "table":
        assert len(result.stdout) < 20_000, "the 10 MB body was printed whole"
        assert "\\x1b]0;owned\\x07\\x1b[2J" in result.stdout and "more characters not shown" in result.stdout
    else:
        doc = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
        assert BODY.decode().split("\r")[0] in "".join(doc["backends"])  # the original, escaped by the encoder

