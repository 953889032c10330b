"""HTTPS_PROXY/HTTP_PROXY/NO_PROXY as Go's net/http applies them (golang.org/x/net/http/httpproxy).

The rules, as Go documents and tests them: a literal loopback host (`localhost`, 127.0.0.0/8,
::1) never goes through a proxy; NO_PROXY entries are `*`, CIDRs, IP addresses or domains, each
with an optional port; `foo.com` matches foo.com and its subdomains, `.foo.com` and `*.foo.com`
only subdomains; upper-case variables win over lower-case ones. The end-to-end behaviour with
the real kubectl is compared in test_access_kubectl.py; here the corners without a network.
"""

from __future__ import annotations

import pytest

from kubectl_waypoint.errors import BadInput
from kubectl_waypoint.kube.proxy import environment_proxy, redact_proxy_url

PROXY = "http://proxy.corp.example:3128"
NO_PROXY = ("corp.example, .svc.example, *.wild.example, 192.0.2.10, 192.0.2.11:8443, 192.0.2.12:443, "
            "198.51.100.0/29, 2001:db8::10, [2001:db8::11]:8443, [2001:db8::12]:443, 2001:db8:f::/48, :1")


@pytest.mark.parametrize("server, proxied", [
    ("https://localhost:6443", False),  # loopback by name: never
    ("https://127.0.0.1:6443", False),
    ("https://127.9.9.9", False),  # all of 127.0.0.0/8
    ("https://[::1]:6443", False),
    ("https://[::2]:6443", True),  # not loopback
    ("https://192.0.2.10:6443", False),  # an IP entry without port: any port
    ("https://192.0.2.11", True),  # entry's port 8443, request's 443
    ("https://192.0.2.11:8443", False),
    ("https://192.0.2.12", False),  # https defaults to 443
    ("https://192.0.2.13", True),
    ("https://198.51.100.5", False),  # in the CIDR
    ("https://198.51.100.9", True),  # just outside it
    ("https://[2001:db8::10]:6443", False),
    ("https://[2001:db8::11]", True),
    ("https://[2001:db8::12]", False),
    ("https://[2001:db8:f:1::1]", False),  # IPv6 CIDR
    ("https://[2001:db8:e::1]", True),
    ("https://corp.example", False),  # a bare domain matches itself...
    ("https://api.corp.example", False),  # ...and its subdomains
    ("https://notcorp.example", True),  # but not another name ending the same way
    ("https://svc.example", True),  # a leading dot: subdomains only
    ("https://k8s.svc.example", False),
    ("https://wild.example", True),  # *.x behaves as .x
    ("https://a.wild.example", False),
    ("https://API.CORP.EXAMPLE", False),  # host names compare without case
    ("https://localhost.example", True),  # loopback is judged by the literal name only
])
def test_no_proxy_and_loopback_as_go_applies_them(server, proxied):
    env = {"HTTPS_PROXY": PROXY, "NO_PROXY": NO_PROXY}
    assert (environment_proxy(server, env) == PROXY) is proxied


def test_a_star_turns_every_proxy_off():
    assert environment_proxy("https://api.example", {"HTTPS_PROXY": PROXY, "NO_PROXY": "*"}) is None


def test_https_servers_use_https_proxy_and_http_servers_http_proxy():
    env = {"HTTPS_PROXY": PROXY, "HTTP_PROXY": "http://other.example:8080"}
    assert environment_proxy("https://api.example", env) == PROXY
    assert environment_proxy("http://api.example", env) == "http://other.example:8080"
    assert environment_proxy("http://api.example", {"HTTPS_PROXY": PROXY}) is None


def test_upper_case_variables_win_over_lower_case_ones():
    env = {"HTTPS_PROXY": PROXY, "https_proxy": "http://lower.example:1", "no_proxy": "api.example"}
    assert environment_proxy("https://api.example", env) is None  # no_proxy read when NO_PROXY is unset
    assert environment_proxy("https://api.example", {**env, "NO_PROXY": "other.example"}) == PROXY
    assert environment_proxy("https://x.example", {"https_proxy": "http://lower.example:1"}) == \
        "http://lower.example:1"


@pytest.mark.parametrize("value, url", [
    ("proxy.corp.example:3128", "http://proxy.corp.example:3128"),  # no scheme: http, as in Go
    ("socks5://127.0.0.1:1080", "socks5://127.0.0.1:1080"),
    ("https://proxy.corp.example", "https://proxy.corp.example"),
])
def test_proxy_urls_are_read_as_go_reads_them(value, url):
    assert environment_proxy("https://api.example", {"HTTPS_PROXY": value}) == url


def test_an_unusable_proxy_url_is_bad_input_without_its_password():
    with pytest.raises(BadInput) as caught:
        environment_proxy("https://api.example", {"HTTPS_PROXY": "ftp://user:pa55word@proxy.example"})
    assert "HTTPS_PROXY" in caught.value.message and "pa55word" not in caught.value.message
    assert redact_proxy_url("http://user:pa55word@proxy.example:3128") == "http://user:***@proxy.example:3128"
