"""Access beyond one request: exec and access reviews as the same identity and through the same
proxy as kubectl, credentials that change mid-run, -v request logging, and bad input."""

from __future__ import annotations

import datetime
import json
import os
import re
import sys

import pytest
import yaml

from conftest import one_line_error
from kubectl_waypoint.kube.client import Cluster
from kubectl_waypoint.kube.config import ClusterFlags, resolve_target
from kubectl_waypoint.kube.resources import PODS
from kubectl_waypoint.sim import SimCluster
from support.kubectl import run_kubectl
from support.proxies import ConnectProxy, Socks5Proxy

PRODUCTPAGE = "http://productpage.bookinfo:9080/productpage"
EXEC_V1 = "client.authentication.k8s.io/v1"


@pytest.fixture
def sim():
    with SimCluster("bookinfo") as cluster:
        yield cluster


def edit_kubeconfig(path: str, user: dict | None = None, **cluster) -> str:
    document = yaml.safe_load(open(path))
    document["clusters"][0]["cluster"].update(cluster)
    if user is not None:
        document["users"][0]["user"] = user
    with open(path, "w") as stream:
        yaml.safe_dump(document, stream)
    return path


def curl_pod(kubeconfig: str) -> str:
    cluster = Cluster(resolve_target(ClusterFlags(kubeconfig=kubeconfig)))
    return next(p["metadata"]["name"] for p in cluster.list(PODS, "curl") if p["metadata"]["name"].startswith("curl-"))


def exec_identity(sim, proxies) -> set[tuple]:
    return {(r.status, r.user, json.dumps(r.impersonate, sort_keys=True) if r.impersonate else None,
             next((name for name, proxy in proxies.items() if proxy.carried(r)), None))
            for r in sim.requests if r.resource == "pods/exec"}


# -- exec: the same identity and proxy as `kubectl exec` -------------------------------------------

@pytest.mark.parametrize("args, proxy", [
    (["--as", "alice", "--as-group", "devs", "--as-uid", "9"], None),
    ([], "socks5"),
    ([], "connect"),
])
def test_exec_carries_impersonation_and_proxy_like_kubectl_exec(sim, run_cli, monkeypatch, tmp_path, args, proxy):
    served = tuple(os.path.join(os.path.dirname(sim.ca_file), name) for name in ("server.crt", "server.key"))
    monkeypatch.setenv("SSL_CERT_FILE", sim.ca_file)  # the https proxy's certificate, for kubectl and us
    with ConnectProxy() as connect, Socks5Proxy() as socks5, ConnectProxy(certificate=served) as https:
        proxies = {"connect": connect, "socks5": socks5, "https": https}
        kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"))
        if proxy:
            edit_kubeconfig(kubeconfig, **{"proxy-url": proxies[proxy].url})
        pod = curl_pod(kubeconfig)
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SSL_CERT_FILE": sim.ca_file}
        sim.clear_requests()
        kubectl = run_kubectl(["--kubeconfig", kubeconfig, "exec", "-n", "curl", pod, *args, "--",
                               "curl", "-s", PRODUCTPAGE], env, str(tmp_path / "cache"))
        assert kubectl.returncode == 0, kubectl.stderr
        from_kubectl = exec_identity(sim, proxies)
        sim.clear_requests()
        run_cli("probe", "--kubeconfig", kubeconfig, "-n", "curl", f"pod/{pod}", PRODUCTPAGE, "--count", "3",
                "--expect-status", "200", *args)
        from_plugin = exec_identity(sim, proxies)
    assert from_plugin == from_kubectl and len(from_plugin) == 1
    assert next(iter(from_plugin))[3] == proxy


def test_exec_goes_through_an_https_proxy(sim, run_cli, monkeypatch, tmp_path):
    """Not compared with kubectl: its WebSocket dialer takes no https:// proxy and falls back to
    SPDY (measured: a POST .../exec through the proxy), which the simulated server does not speak."""
    served = tuple(os.path.join(os.path.dirname(sim.ca_file), name) for name in ("server.crt", "server.key"))
    monkeypatch.setenv("SSL_CERT_FILE", sim.ca_file)  # the proxy's certificate, as Go would read it
    with ConnectProxy(certificate=served) as https:
        kubeconfig = edit_kubeconfig(sim.write_kubeconfig(str(tmp_path / "kubeconfig")), **{"proxy-url": https.url})
        pod = curl_pod(kubeconfig)
        sim.clear_requests()
        run_cli("probe", "--kubeconfig", kubeconfig, "-n", "curl", f"pod/{pod}", PRODUCTPAGE, "--count", "3",
                "--expect-status", "200", "--as", "alice")
        assert exec_identity(sim, {"https": https}) == {(101, sim.user, json.dumps(
            {"extra": {}, "groups": [], "uid": None, "user": "alice"}, sort_keys=True), "https")}


# -- access reviews judge the impersonated identity --------------------------------------------------

def test_the_preflight_judges_the_impersonated_user_like_kubectl_auth_can_i(sim, run_cli, tmp_path):
    sim.deny("list", "pods", user="alice")  # alice may not; the kubeconfig's own user may
    kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    can_i = [run_kubectl(["--kubeconfig", kubeconfig, "auth", "can-i", "list", "pods", "-n", "bookinfo", *who],
                         env, str(tmp_path / "cache")).stdout.strip() for who in ([], ["--as", "alice"])]
    assert can_i == ["yes", "no"]
    sim.clear_requests()
    denied = run_cli("verify", "--kubeconfig", kubeconfig, "-n", "bookinfo", "--skip", "routing,authorization",
                     "--as", "alice", expect=3)
    assert "pods" in one_line_error(denied.stderr)
    reviews = [r for r in sim.requests if r.resource == "selfsubjectaccessreviews"]
    assert reviews and all(r.impersonate["user"] == "alice" for r in reviews)
    run_cli("verify", "--kubeconfig", kubeconfig, "-n", "bookinfo", "--skip", "routing,authorization")


# -- -v: kubectl's request lines -----------------------------------------------------------------

REQUEST_LINE = re.compile(r"^I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ [\w.]+:\d+\] (GET|POST) https://127\.0\.0\.1:\d+/\S+ "
                          r"\d{3} [A-Za-z ]+ in \d+ milliseconds$")


@pytest.mark.parametrize("form", [["-v=6"], ["--v=6"], ["-v", "6"], ["--v", "6"], ["-v6"]])
def test_v6_logs_one_line_per_request_like_kubectl_and_never_the_token(sim, run_cli, tmp_path, form):
    kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    kubectl = run_kubectl(["--kubeconfig", kubeconfig, "get", "pods", "-n", "bookinfo", *form], env,
                          str(tmp_path / "cache"))
    theirs = [line for line in kubectl.stderr.splitlines() if "round_trippers" in line]
    assert theirs and all(REQUEST_LINE.match(line) for line in theirs), theirs
    sim.clear_requests()
    ours = run_cli("skew", "--kubeconfig", kubeconfig, "-n", "bookinfo", *form).stderr.splitlines()
    assert len(ours) == len(sim.requests) and all(REQUEST_LINE.match(line) for line in ours), ours
    # each names the line of transport.py that made the request, as kubectl's name round_trippers.go
    assert all(" transport.py:" in line for line in ours), ours
    assert sim.token not in kubectl.stderr + "".join(ours)
    assert run_cli("skew", "--kubeconfig", kubeconfig, "-n", "bookinfo", "-v", "3").stderr == ""


def test_v_needs_a_number_as_in_kubectl(sim, run_cli, tmp_path):
    kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"))
    assert "requires an argument" in run_cli("skew", "--kubeconfig", kubeconfig, "-v", expect=2).stderr
    assert "'x' is not a valid integer" in run_cli("skew", "--kubeconfig", kubeconfig, "-v", "x", expect=2).stderr
    assert not sim.requests


# -- credentials that change mid-run ---------------------------------------------------------------

def write_plugin(path, body: str) -> str:
    path.write_text(f"#!{sys.executable}\n" + body)
    path.chmod(0o700)
    return str(path)


def counting_plugin(tmp_path, tokens: list[str], expiry: str | None = None) -> tuple[str, object]:
    """A plugin answering tokens[n] on its n-th run (the last one ever after); returns (path, runs file)."""
    runs = tmp_path / "runs"
    status = {"expirationTimestamp": expiry} if expiry else {}
    return write_plugin(tmp_path / "plugin", f"""\
import json, os
runs = {str(runs)!r}
count = len(open(runs).read()) if os.path.exists(runs) else 0
open(runs, "a").write("x")
tokens = {tokens!r}
print(json.dumps({{"apiVersion": {EXEC_V1!r}, "kind": "ExecCredential",
                  "status": {{"token": tokens[min(count, len(tokens) - 1)], **{status!r}}}}}))
"""), runs


def test_a_401_reruns_the_exec_plugin_once_and_retries(sim, run_cli, tmp_path):
    sim.tokens["renewed-token"] = "renewed"
    plugin, runs = counting_plugin(tmp_path, ["revoked-token", "renewed-token"])
    kubeconfig = edit_kubeconfig(sim.write_kubeconfig(str(tmp_path / "kubeconfig")),
                                 user={"exec": {"apiVersion": EXEC_V1, "command": plugin, "interactiveMode": "Never"}})
    run_cli("skew", "--kubeconfig", kubeconfig, "-n", "bookinfo")
    assert runs.read_text() == "xx"
    first, retried = sim.requests[:2]
    assert (first.status, first.user, retried.path, retried.user) == (401, "", first.path, "renewed")
    assert {r.user for r in sim.requests[1:]} == {"renewed"}


def test_a_401_with_the_same_credential_fails_after_one_retry(sim, run_cli, tmp_path):
    plugin, runs = counting_plugin(tmp_path, ["revoked-token"])
    kubeconfig = edit_kubeconfig(sim.write_kubeconfig(str(tmp_path / "kubeconfig")),
                                 user={"exec": {"apiVersion": EXEC_V1, "command": plugin, "interactiveMode": "Never"}})
    result = run_cli("skew", "--kubeconfig", kubeconfig, "-n", "bookinfo", expect=3)
    assert "401 Unauthorized" in one_line_error(result.stderr)
    assert runs.read_text() == "xx" and [r.status for r in sim.requests] == [401]


def test_a_short_lived_exec_credential_is_cached_until_it_expires(sim, run_cli, tmp_path):
    """The kubernetes client renews 5 minutes early, so a 2-minute token ran the plugin per request."""
    soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    plugin, runs = counting_plugin(tmp_path, [sim.token], expiry=soon)
    kubeconfig = edit_kubeconfig(sim.write_kubeconfig(str(tmp_path / "kubeconfig")),
                                 user={"exec": {"apiVersion": EXEC_V1, "command": plugin, "interactiveMode": "Never"}})
    run_cli("skew", "--kubeconfig", kubeconfig)
    assert len(sim.requests) > 5 and runs.read_text() == "x"


def test_requests_share_one_kept_alive_connection_with_nagle_off_as_go_does(sim, tmp_path):
    """Go keeps connections alive and sets TCP_NODELAY: small requests (access reviews) must not
    wait for the server's delayed ACK, and a command's requests need not each pay a TLS handshake."""
    import socket

    cluster = Cluster(resolve_target(ClusterFlags(kubeconfig=sim.write_kubeconfig(str(tmp_path / "kubeconfig")))))
    for _ in range(3):
        cluster.list(PODS, "bookinfo")
    assert len({record.peer for record in sim.requests}) == 1
    kept = cluster._transport()._idle
    assert len(kept) == 1 and kept[0].sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_token_file_is_read_again_when_it_changes(sim, tmp_path):
    sim.tokens.update({"first-file-token": "first", "second-file-token": "second"})
    token_file = tmp_path / "token"
    token_file.write_text("first-file-token\n")
    kubeconfig = edit_kubeconfig(sim.write_kubeconfig(str(tmp_path / "kubeconfig")),
                                 user={"tokenFile": str(token_file)})
    cluster = Cluster(resolve_target(ClusterFlags(kubeconfig=kubeconfig)))
    cluster.list(PODS, "bookinfo")
    token_file.write_text("second-file-token-rotated\n")  # another length: a change even within one mtime tick
    token_file.write_text("second-file-token\n")
    os.utime(token_file, ns=(1, 1))
    cluster.list(PODS, "bookinfo")
    assert [r.user for r in sim.requests] == ["first", "second"]


def test_the_in_cluster_service_account_token_is_read_again_after_rotation(sim, tmp_path):
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "ca.crt").write_text(sim.ca_pem)
    (account / "namespace").write_text("bookinfo")
    (account / "token").write_text(sim.token)
    sim.tokens["rotated-bound-token"] = "rotated"
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(sim.port)}
    target = resolve_target(ClusterFlags(), environ=env, home=str(tmp_path / "home"), service_account_dir=str(account))
    cluster = Cluster(target)
    assert target.in_cluster and cluster.list(PODS, target.namespace)
    (account / "token").write_text("rotated-bound-token")
    os.utime(account / "token", ns=(2, 2))
    cluster.list(PODS, target.namespace)
    assert [r.user for r in sim.requests] == [sim.user, "rotated"]


# -- bad input: one sentence, the right exit code, nothing secret ----------------------------------

def test_unknown_flag_is_a_usage_error(run_cli):
    assert run_cli("skew", "--bogus", expect=2).code == 2


def test_as_group_without_as_is_refused_like_kubectl(sim, run_cli, tmp_path):
    kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"))
    kubectl = run_kubectl(["--kubeconfig", kubeconfig, "get", "pods", "--as-group", "devs"],
                          {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, str(tmp_path / "cache"))
    assert kubectl.returncode != 0 and "without impersonating a user" in kubectl.stderr
    for flag in (["--as-group", "devs"], ["--as-uid", "7"]):
        error = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, *flag, expect=2).stderr)
        assert "without impersonating a user" in error and "--as" in error
    assert not sim.requests


def test_missing_certificate_file_names_the_file_and_the_flag(sim, run_cli, tmp_path):
    kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"))
    missing = str(tmp_path / "no-such-ca.crt")
    error = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, "--certificate-authority", missing,
                                   expect=2).stderr)
    assert f'"{missing}"' in error and "--certificate-authority" in error
    error = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, "--client-certificate", missing,
                                   expect=2).stderr)
    assert "--client-key" in error  # kubectl's own complaint first: a certificate needs its key


def test_unreadable_token_file_names_the_file(sim, run_cli, tmp_path):
    kubeconfig = edit_kubeconfig(sim.write_kubeconfig(str(tmp_path / "kubeconfig")),
                                 user={"tokenFile": str(tmp_path)})  # a folder: exists, cannot be read as a file
    error = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, expect=3).stderr)
    assert f'the token file "{tmp_path}"' in error


@pytest.mark.parametrize("kind", ["connect", "socks5"])
def test_a_proxy_that_refuses_is_named_without_its_password(sim, run_cli, tmp_path, kind):
    proxy_class = ConnectProxy if kind == "connect" else Socks5Proxy
    with proxy_class(refuse=True) as proxy:
        url = proxy.url.replace("://", "://user:proxy-s3cret@")
        kubeconfig = edit_kubeconfig(sim.write_kubeconfig(str(tmp_path / "kubeconfig")), **{"proxy-url": url})
        logged = run_cli("-v", "6", "skew", "--kubeconfig", kubeconfig, expect=3)
        result = run_cli("skew", "--kubeconfig", kubeconfig, expect=3)
        assert proxy.refused and not sim.requests
    error = one_line_error(result.stderr)
    assert error.startswith("error: ") and f"127.0.0.1:{proxy.port}" in error and "proxy-url" in error
    assert "proxy-s3cret" not in logged.stderr + error and sim.token not in logged.stderr + error


def test_a_proxy_nobody_answers_at_is_named_as_the_proxy_not_the_server(sim, run_cli, tmp_path):
    """Nothing listening at proxy-url: the sentence names the proxy (without its password), not the API server."""
    import socket

    with socket.socket() as placeholder:  # a port that was free a moment ago and has no listener
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    url = f"http://user:proxy-s3cret@127.0.0.1:{port}"
    kubeconfig = edit_kubeconfig(sim.write_kubeconfig(str(tmp_path / "kubeconfig")), **{"proxy-url": url})
    error = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, expect=3).stderr)
    assert error.startswith(f"error: the proxy 127.0.0.1:{port} (proxy-url in the kubeconfig) did not carry"), error
    assert "proxy-s3cret" not in error and not sim.requests


@pytest.mark.parametrize("provider, names", [("gcp", "gke-gcloud-auth-plugin"), ("azure", "kubelogin")])
def test_removed_auth_providers_say_what_to_install_like_kubectl(sim, run_cli, tmp_path, provider, names):
    kubeconfig = edit_kubeconfig(sim.write_kubeconfig(str(tmp_path / "kubeconfig")),
                                 user={"auth-provider": {"name": provider, "config": {"access-token": "s3cret"}}})
    kubectl = run_kubectl(["--kubeconfig", kubeconfig, "get", "pods"], {"PATH": os.environ["PATH"],
                                                                        "HOME": str(tmp_path)}, str(tmp_path / "c"))
    assert kubectl.returncode != 0 and names in kubectl.stderr
    error = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, expect=3).stderr)
    assert names in error and "s3cret" not in error


def test_no_credential_goes_to_a_plain_http_server_as_with_kubectl(run_cli, tmp_path):
    with SimCluster("bookinfo", tls=False) as plain:
        kubeconfig = plain.write_kubeconfig(str(tmp_path / "kubeconfig"))
        kubectl = run_kubectl(["--kubeconfig", kubeconfig, "get", "pods", "-n", "bookinfo"],
                              {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, str(tmp_path / "cache"))
        from_kubectl = {(r.status, r.user) for r in plain.requests}
        plain.clear_requests()
        result = run_cli("skew", "--kubeconfig", kubeconfig, "-n", "bookinfo", expect=3)
        assert kubectl.returncode != 0 and "401" in one_line_error(result.stderr)
        assert {(r.status, r.user) for r in plain.requests} == from_kubectl == {(401, "")}


def test_a_401_reads_the_token_file_again_even_when_it_looks_unchanged(sim, tmp_path):
    """A rotation within one mtime tick, same size, same inode: only the 401 reveals it."""
    sim.tokens.update({"token-aaaa": "before", "token-bbbb": "after"})
    token_file = tmp_path / "token"
    token_file.write_text("token-aaaa")
    os.utime(token_file, ns=(5, 5))
    kubeconfig = edit_kubeconfig(sim.write_kubeconfig(str(tmp_path / "kubeconfig")), user={"tokenFile": str(token_file)})
    cluster = Cluster(resolve_target(ClusterFlags(kubeconfig=kubeconfig)))
    cluster.list(PODS, "bookinfo")
    del sim.tokens["token-aaaa"]  # revoked, and rotated on disk behind an identical stat
    with open(token_file, "r+") as stream:
        stream.write("token-bbbb")
    os.utime(token_file, ns=(5, 5))
    cluster.list(PODS, "bookinfo")
    assert [(r.status, r.user) for r in sim.requests] == [(200, "before"), (401, ""), (200, "after")]


@pytest.mark.parametrize("form, traceback", [(["-v", "9"], True), (["--v=10"], True), (["-v=8"], False), ([], False)])
def test_tracebacks_of_a_bug_appear_from_v_9(monkeypatch, capsys, form, traceback):
    """A bug cannot be produced on purpose from outside: one is planted in the skew command."""
    from kubectl_waypoint import commands
    from kubectl_waypoint.__main__ import main

    def planted_bug(*_args, **_kwargs):
        raise RuntimeError("planted")

    monkeypatch.setattr(commands, "run_skew", planted_bug)
    assert main(["skew", *form]) == 1
    err = capsys.readouterr().err
    assert ("Traceback" in err) is traceback
    assert err.splitlines()[-1].startswith("error: internal error: RuntimeError: planted")


def test_a_certificate_for_another_name_points_at_tls_server_name(sim, run_cli, tmp_path):
    kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"))
    error = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, "--tls-server-name", "wrong.example",
                                   expect=3).stderr)
    assert "certificate is not valid for this host" in error and "--tls-server-name" in error
    error = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, "--insecure-skip-tls-verify",
                                   "--certificate-authority", sim.ca_file, expect=2).stderr)
    assert "--insecure-skip-tls-verify and --certificate-authority cannot be used together" in error
