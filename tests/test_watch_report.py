"""`watch --report FILE.html` in a real headless browser (Debian's chromium; .ci/run installs it).

Console messages are read from chromium's own log (--enable-logging=stderr): a page that loads
anything from outside, or runs into its Content-Security-Policy, logs a CONSOLE line there. A
control page proves that this log works before the report is judged by its silence.
"""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
import tempfile

import pytest

from kubectl_waypoint.demo import watch_demo
from kubectl_waypoint.render.html import watch_html
from kubectl_waypoint.timeline import UpgradeTimeline

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); "
                                                             ".ci/run installs it")
HOSTILE = '<img src=x onerror="alert(1)"></title><script>alert(2)</script>&amp;'


def chromium(page: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args,
                               f"file://{page}"], capture_output=True, text=True, timeout=120)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "upgrade.html"
    assert watch_demo(output="json", no_colour=True, report_file=str(path), pace=0.2) == 0
    return path


def test_the_report_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    assert not re.search(r"<script|<link|@import|url\(|https?://(?!www\.w3\.org/2000/svg)", text)
    assert "default-src 'none'" in text  # and the browser would refuse anything external anyway


@needs_chromium
def test_chromium_logs_console_messages_here(tmp_path):
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
                       '<link rel="stylesheet" href="https://example.invalid/x.css"><p>control</p>')
    assert console_lines(chromium(str(control), "--dump-dom").stderr)


@needs_chromium
def test_the_report_renders_in_chromium_without_console_errors(report, tmp_path):
    done = chromium(str(report), "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert console_lines(done.stderr) == []
    dom = done.stdout
    assert 'id="verdict"' in dom and "PASS: the upgrade finished and the final verify passed" in dom
    svg = re.search(r"<svg.*?</svg>", dom, re.S).group(0)
    lanes = [t for t in re.findall(r"<text[^>]*>([^<]+)</text>", svg) if not re.fullmatch(r"[0-9.]+s", t)]
    assert lanes == ["istio-cni", "istiod", "waypoint bookinfo/waypoint", "ztunnel",
                     "AuthorizationPolic\u2026oductpage (allowed)", "AuthorizationPolic\u2026 (denied principal)",
                     "HTTPRoute reviews -&gt; Service reviews"]
    assert svg.count('class="outage"') == 2 and 'fill="#e03131"' in svg  # shaded, and failed requests drawn
    shot = tmp_path / "report.png"
    done = chromium(str(report), f"--screenshot={shot}", "--window-size=1200,900")
    assert done.returncode == 0 and shot.stat().st_size > 20_000
    assert console_lines(done.stderr) == []


@needs_chromium
def test_cluster_strings_are_shown_as_text_never_as_markup(tmp_path):
    model = UpgradeTimeline(None, datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))
    pod = {"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "istiod", "istio.io/rev": HOSTILE}},
           "spec": {"containers": [{"image": "x/pilot:1.28.0"}]}}
    model.observe("ADDED", "pods", pod, 0.0, initial=True)
    model.request(HOSTILE, False, 1.0)
    model.gap(HOSTILE, 2.0)
    doc = model.report(HOSTILE, "inconclusive", HOSTILE, 3.0, None, None)
    page = tmp_path / "hostile.html"
    page.write_text(watch_html(doc, model), encoding="utf-8")
    done = chromium(str(page), "--dump-dom")
    assert console_lines(done.stderr) == []
    assert "<img" not in done.stdout and "<script" not in done.stdout  # no element came from a cluster string
    svg = re.search(r"<svg.*?</svg>", done.stdout, re.S).group(0)
    assert "istiod-&lt;img src=x" in svg  # a lane named by a cluster label, shown literally
    assert done.stdout.count("&lt;img src=x") >= 4  # title, heading, verdict, lanes, events: all as text
