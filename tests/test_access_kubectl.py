"""Every access flag and kubeconfig field, compared with the real kubectl on the same server.

For each case, kubectl (`get pods -n bookinfo`) and the plugin (`skew -n bookinfo`) run with
the same flags, kubeconfig and environment against one simulated cluster over TLS. The
simulated server records what reached it for the pods list: the authenticated user and how
(token or client certificate), the Impersonate-* headers, whether a test proxy carried it, and
whether compression was asked for. Both must agree, including on failing at all.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
from dataclasses import dataclass, field

import pytest
import yaml

from conftest import one_line_error
from kubectl_waypoint.sim import SimCluster
from support.kubectl import client_certificate, run_kubectl
from support.proxies import ConnectProxy, Socks5Proxy

BOB_TOKEN = "bob-token-0123456789abcdef"
FILE_TOKEN = "fiona-token-0123456789abcdef"
EXEC_TOKEN = "exec-token-0123456789abcdef"


def jwt(claims: dict) -> str:
    encode = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")  # noqa: E731
    return f"{encode({'alg': 'RS256'})}.{encode(claims)}.c2lnbmF0dXJl"


OIDC_TOKEN = jwt({"iss": "https://issuer.invalid", "exp": 4102444800, "sub": "olga"})  # expires in 2100
PODS = "/api/v1/namespaces/bookinfo/pods"


@dataclass
class Case:
    args: list[str] = field(default_factory=lambda: ["-n", "bookinfo"])
    user: dict | None = None  # replaces the kubeconfig's user entry
    cluster: dict = field(default_factory=dict)  # merged into the cluster entry (None deletes a key)
    users: dict = field(default_factory=dict)  # more named users
    env: dict = field(default_factory=dict)
    kubeconfig: bool = True  # False: no kubeconfig at all, the flags alone


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One simulated cluster (client certificates on), one CONNECT and one SOCKS5 proxy."""
    folder = tmp_path_factory.mktemp("access")
    sim = SimCluster("bookinfo")
    sim.client_certificates = True
    sim.tokens.update({BOB_TOKEN: "bob", FILE_TOKEN: "fiona", EXEC_TOKEN: "exec-user", OIDC_TOKEN: "olga"})
    with sim:
        served = (os.path.join(os.path.dirname(sim.ca_file), name) for name in ("server.crt", "server.key"))
        with ConnectProxy() as connect, Socks5Proxy() as socks5, ConnectProxy(certificate=tuple(served)) as https:
            yield sim, str(folder), {"connect": connect, "socks5": socks5, "https": https}


def loopback_alias() -> str | None:
    """A host name that resolves to 127.0.0.1 but is not the literal `localhost` (Go proxies those)."""
    try:
        with open("/etc/hosts") as hosts:
            names = [name for line in hosts if line.strip() and not line.startswith("#")
                     for name in line.split()[1:] if line.split()[0] == "127.0.0.1"]
    except OSError:
        return None
    for name in names:
        if name != "localhost" and socket.gethostbyname(name) == "127.0.0.1":
            return name
    return None


def build_cases(sim, folder, proxies) -> dict[str, Case]:
    token_file = os.path.join(folder, "token")
    with open(token_file, "w") as stream:
        stream.write(FILE_TOKEN + "\n")
    cert, key = client_certificate(sim, folder, "erin", "admins")
    plugin = os.path.join(folder, "plugin")
    with open(plugin, "w") as stream:
        stream.write(f"#!{sys.executable}\nimport json\nprint(json.dumps({{'apiVersion': "
                     f"'client.authentication.k8s.io/v1', 'kind': 'ExecCredential', 'status': "
                     f"{{'token': {EXEC_TOKEN!r}}}}}))\n")
    os.chmod(plugin, 0o700)
    cert_plugin = os.path.join(folder, "cert-plugin")
    with open(cert_plugin, "w") as stream:
        status = {"clientCertificateData": open(cert).read(), "clientKeyData": open(key).read()}
        stream.write(f"#!{sys.executable}\nimport json\nprint(json.dumps({{'apiVersion': "
                     f"'client.authentication.k8s.io/v1', 'kind': 'ExecCredential', 'status': {status!r}}}))\n")
    os.chmod(cert_plugin, 0o700)
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": plugin,
                          "interactiveMode": "Never", "provideClusterInfo": True, "env": [{"name": "X", "value": "1"}]}}
    other_ca = base64.b64encode(open(sim.ca_file, "rb").read()[::-1]).decode()  # not the cluster's CA
    carol = {"token": sim.token, "as": "carol", "as-groups": ["auditors", "sre"], "as-uid": "7",
             "as-user-extra": {"reason": ["upgrade check"], "scopes.example.com/team": ["a", "b"]}}
    alias = loopback_alias()
    by_alias = {"server": f"https://{alias}:{sim.port}", "tls-server-name": "localhost"}
    return {
        "kubeconfig token": Case(),
        "--token": Case(args=["-n", "bookinfo", "--token", BOB_TOKEN]),
        "--as --as-group --as-uid": Case(args=["-n", "bookinfo", "--as", "alice", "--as-group", "devs",
                                               "--as-group=ops", "--as-uid", "42"]),
        "as as-groups as-uid as-user-extra": Case(user=carol),
        "--as replaces only the user": Case(args=["-n", "bookinfo", "--as", "dave"], user=carol),
        "--user": Case(args=["-n", "bookinfo", "--user", "bob"], users={"bob": {"token": BOB_TOKEN}}),
        "no kubeconfig, --server --token --certificate-authority": Case(
            args=["-n", "bookinfo", "--server", sim.url, "--token", BOB_TOKEN, "--certificate-authority", sim.ca_file],
            kubeconfig=False),
        "--cluster": Case(args=["-n", "bookinfo", "--cluster", "second"]),
        "--context": Case(args=["-n", "bookinfo", "--context", "second"]),
        "tokenFile wins over token": Case(user={"token": sim.token, "tokenFile": token_file}),
        "missing tokenFile falls back to token": Case(user={"token": sim.token,
                                                            "tokenFile": os.path.join(folder, "gone")}),
        "-s/--server": Case(args=["-n", "bookinfo", "-s", sim.url], cluster={"server": "https://127.0.0.1:1"}),
        "--server=": Case(args=["-n", "bookinfo", f"--server={sim.url}"], cluster={"server": "https://127.0.0.1:1"}),
        "--certificate-authority": Case(args=["-n", "bookinfo", "--certificate-authority", sim.ca_file],
                                        cluster={"certificate-authority-data": other_ca}),
        "certificate-authority file": Case(cluster={"certificate-authority-data": None,
                                                    "certificate-authority": sim.ca_file}),
        "wrong CA": Case(cluster={"certificate-authority-data": other_ca}),
        "--insecure-skip-tls-verify": Case(args=["-n", "bookinfo", "--insecure-skip-tls-verify"],
                                           cluster={"certificate-authority-data": other_ca}),
        "--insecure-skip-tls-verify with --certificate-authority": Case(args=[
            "-n", "bookinfo", "--insecure-skip-tls-verify", "--certificate-authority", sim.ca_file]),
        "insecure-skip-tls-verify in kubeconfig": Case(cluster={"certificate-authority-data": None,
                                                                "insecure-skip-tls-verify": True}),
        "--client-certificate --client-key": Case(args=["-n", "bookinfo", "--client-certificate", cert,
                                                        "--client-key", key], user={}),
        "client-certificate-data in kubeconfig": Case(user={
            "client-certificate-data": base64.b64encode(open(cert, "rb").read()).decode(),
            "client-key-data": base64.b64encode(open(key, "rb").read()).decode()}),
        "--tls-server-name": Case(args=["-n", "bookinfo", "--tls-server-name", "localhost"]),
        "wrong --tls-server-name": Case(args=["-n", "bookinfo", "--tls-server-name", "wrong.example"]),
        "tls-server-name in kubeconfig": Case(cluster={"tls-server-name": "wrong.example"}),
        "--server drops the kubeconfig tls-server-name": Case(args=["-n", "bookinfo", "--server", sim.url],
                                                              cluster={"tls-server-name": "wrong.example"}),
        "--disable-compression": Case(args=["-n", "bookinfo", "--disable-compression"]),
        "disable-compression in kubeconfig": Case(cluster={"disable-compression": True}),
        "-n=bookinfo": Case(args=["-n=bookinfo"]),
        "-nbookinfo": Case(args=["-nbookinfo"]),
        "--namespace=bookinfo": Case(args=["--namespace=bookinfo"]),
        "--request-timeout --cache-dir": Case(args=["-n", "bookinfo", "--request-timeout", "90s"]),
        "exec plugin": Case(user=exec_user),
        "exec plugin interactiveMode IfAvailable": Case(user={"exec": {**exec_user["exec"],
                                                                       "interactiveMode": "IfAvailable"}}),
        "exec plugin interactiveMode Always without a terminal": Case(user={"exec": {**exec_user["exec"],
                                                                                     "interactiveMode": "Always"}}),
        "exec plugin issuing a client certificate": Case(user={"exec": {**exec_user["exec"], "command": cert_plugin}}),
        "token wins over an exec plugin": Case(user={"token": BOB_TOKEN, **exec_user}),
        "--token with --client-certificate": Case(args=["-n", "bookinfo", "--token", BOB_TOKEN,
                                                        "--client-certificate", cert, "--client-key", key]),
        "as-groups without as": Case(user={"token": sim.token, "as-groups": ["devs"]}),
        "--user that does not exist": Case(args=["-n", "bookinfo", "--user", "nobody"]),
        "auth-provider oidc with a valid id-token": Case(user={"auth-provider": {"name": "oidc", "config": {
            "idp-issuer-url": "https://issuer.invalid", "client-id": "waypoint", "id-token": OIDC_TOKEN}}}),
        "HTTPS_PROXY skips 127.0.0.1": Case(env={"HTTPS_PROXY": proxies["connect"].url}),
        "HTTPS_PROXY skips localhost": Case(cluster={"server": f"https://localhost:{sim.port}"},
                                            env={"HTTPS_PROXY": proxies["connect"].url}),
        "HTTPS_PROXY for a name resolving to loopback": Case(cluster=by_alias,
                                                              env={"HTTPS_PROXY": proxies["connect"].url}),
        "https_proxy lower case": Case(cluster=by_alias, env={"https_proxy": proxies["socks5"].url}),
        "NO_PROXY name": Case(cluster=by_alias, env={"HTTPS_PROXY": proxies["connect"].url, "NO_PROXY": f".x,{alias}"}),
        "NO_PROXY with port": Case(cluster=by_alias, env={"HTTPS_PROXY": proxies["connect"].url,
                                                          "NO_PROXY": f"{alias}:{sim.port}"}),
        "NO_PROXY other port": Case(cluster=by_alias, env={"HTTPS_PROXY": proxies["connect"].url,
                                                           "NO_PROXY": f"{alias}:1"}),
        "NO_PROXY *": Case(cluster=by_alias, env={"HTTPS_PROXY": proxies["connect"].url, "NO_PROXY": "*"}),
        "proxy-url http": Case(cluster={"proxy-url": proxies["connect"].url}),
        "proxy-url socks5": Case(cluster={"proxy-url": proxies["socks5"].url}),
        "proxy-url https": Case(cluster={"proxy-url": proxies["https"].url}, env={"SSL_CERT_FILE": sim.ca_file}),
        "HTTPS_PROXY https://": Case(cluster=by_alias, env={"HTTPS_PROXY": proxies["https"].url,
                                                            "SSL_CERT_FILE": sim.ca_file}),
        "proxy-url wins over HTTPS_PROXY": Case(cluster={"proxy-url": proxies["socks5"].url},
                                                env={"HTTPS_PROXY": proxies["connect"].url}),
    }


CASES = ["kubeconfig token", "--token", "--as --as-group --as-uid", "as as-groups as-uid as-user-extra",
         "--as replaces only the user", "--user", "no kubeconfig, --server --token --certificate-authority", "--cluster", "--context", "tokenFile wins over token",
         "missing tokenFile falls back to token", "-s/--server", "--server=", "--certificate-authority",
         "certificate-authority file", "wrong CA", "--insecure-skip-tls-verify",
         "--insecure-skip-tls-verify with --certificate-authority",
         "insecure-skip-tls-verify in kubeconfig", "--client-certificate --client-key",
         "client-certificate-data in kubeconfig", "--tls-server-name", "wrong --tls-server-name",
         "tls-server-name in kubeconfig", "--server drops the kubeconfig tls-server-name", "--disable-compression",
         "disable-compression in kubeconfig", "-n=bookinfo", "-nbookinfo", "--namespace=bookinfo",
         "--request-timeout --cache-dir", "exec plugin", "auth-provider oidc with a valid id-token",
         "exec plugin interactiveMode IfAvailable", "exec plugin interactiveMode Always without a terminal",
         "exec plugin issuing a client certificate", "token wins over an exec plugin", "--token with --client-certificate",
         "as-groups without as", "--user that does not exist", "HTTPS_PROXY skips 127.0.0.1", "HTTPS_PROXY skips localhost",
         "HTTPS_PROXY for a name resolving to loopback", "https_proxy lower case", "NO_PROXY name",
         "NO_PROXY with port", "NO_PROXY other port", "NO_PROXY *", "proxy-url http", "proxy-url socks5",
         "proxy-url https", "HTTPS_PROXY https://", "proxy-url wins over HTTPS_PROXY"]


def write_case_kubeconfig(sim, path: str, case: Case) -> str:
    sim.write_kubeconfig(path)
    document = yaml.safe_load(open(path))
    cluster = document["clusters"][0]["cluster"]
    for key, value in case.cluster.items():
        if value is None:
            cluster.pop(key, None)
        else:
            cluster[key] = value
    if case.user is not None:
        document["users"][0]["user"] = case.user
    document["users"] += [{"name": name, "user": user} for name, user in case.users.items()]
    # A second cluster and context, for --cluster and --context: the same server under other names.
    document["clusters"].append({"name": "second", "cluster": dict(cluster)})
    document["contexts"].append({"name": "second", "context": {"cluster": "second", "user": "simulated"}})
    with open(path, "w") as stream:
        yaml.safe_dump(document, stream)
    return path


def identities(sim, proxies) -> set[tuple]:
    """What reached the server for the pods list: who, how, impersonating whom, through which proxy,
    asking for gzip or not, with which server-side timeout."""
    seen = set()
    for record in sim.requests:
        if record.path != PODS:
            continue
        via = next((name for name, proxy in proxies.items() if proxy.carried(record)), None)
        impersonate = json.dumps(record.impersonate, sort_keys=True) if record.impersonate else None
        seen.add((record.status, record.user, record.credential, impersonate, via,
                  "gzip" in record.accept_encoding, record.query.get("timeout")))
    return seen


@pytest.mark.parametrize("name", CASES)
def test_same_identity_proxy_and_outcome_as_kubectl(world, run_cli, monkeypatch, tmp_path, name):
    sim, folder, proxies = world
    case = build_cases(sim, folder, proxies)[name]
    if case.cluster.get("server", "").startswith("https://" + str(loopback_alias())):
        assert loopback_alias(), "needs a name in /etc/hosts that resolves to 127.0.0.1 besides localhost"
    kubeconfig = ["--kubeconfig", write_case_kubeconfig(sim, str(tmp_path / "kubeconfig"), case)] if case.kubeconfig else []
    for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE"):
        monkeypatch.delenv(variable, raising=False)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **case.env}

    sim.clear_requests()
    kubectl = run_kubectl([*kubeconfig, "get", "pods", *case.args], env, str(tmp_path / "cache"))
    from_kubectl = identities(sim, proxies)

    sim.clear_requests()
    result = run_cli("skew", *kubeconfig, *case.args, "--cache-dir", str(tmp_path / "cache"),
                     env={"HOME": str(tmp_path), **case.env}, expect=None)
    from_plugin = identities(sim, proxies)

    assert (result.code == 0) == (kubectl.returncode == 0), (kubectl.stderr, result.stderr)
    assert from_plugin == from_kubectl, (kubectl.stderr[-500:], result.stderr)
    if kubectl.returncode == 0:
        assert from_plugin, "the pods list reached the server"
    else:  # refused on the command line (2) or by the cluster or kubeconfig (3), in one sentence
        assert result.code in (2, 3) and one_line_error(result.stderr)


def test_the_cases_cover_every_kubectl_access_flag():
    """Every flag of cluster_options appears in some comparison with kubectl."""
    import click

    from kubectl_waypoint.cli import cluster_options

    command = cluster_options(all_namespaces=False)(click.Command("probe-flags", callback=lambda **_: None))
    covered = " ".join(CASES)
    flags = [opt for param in command.params for opt in param.opts if opt.startswith("--")]
    assert [flag for flag in flags if flag not in covered and flag != "--kubeconfig"] == []


def test_a_plain_http_server_behind_a_proxy_gets_whole_requests_as_from_kubectl(run_cli, tmp_path):
    """Go hands a request for an http:// server to an HTTP proxy whole (absolute form, no CONNECT);
    the proxy sees the same request lines from kubectl and from us, and both get their answer."""
    with SimCluster("bookinfo", tls=False, anonymous=True) as sim, ConnectProxy() as proxy:
        kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"))
        with open(kubeconfig) as stream:
            config = yaml.safe_load(stream)
        config["clusters"][0]["cluster"]["proxy-url"] = proxy.url
        with open(kubeconfig, "w") as stream:
            yaml.safe_dump(config, stream)
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        theirs = run_kubectl(["--kubeconfig", kubeconfig, "get", "pods", "-n", "bookinfo", "-o", "name"], env,
                             str(tmp_path / "cache"))
        assert theirs.returncode == 0, theirs.stderr
        kubectl_lines, proxy.forwarded[:] = list(proxy.forwarded), []
        run_cli("skew", "--kubeconfig", kubeconfig)
        ours, url = list(proxy.forwarded), sim.url
        upstreams = len(proxy.tunnels)
    pods = f"GET {url}/api/v1/namespaces/bookinfo/pods?limit=500 HTTP/1.1"
    assert pods in kubectl_lines, kubectl_lines
    assert ours and all(line.startswith(f"GET {url}/") for line in ours), ours
    assert upstreams == len(kubectl_lines) + len(ours)  # one upstream per forwarded request: no CONNECT


def test_a_list_over_128_kib_arrives_gzipped_and_is_read_like_kubectl_reads_it(run_cli, tmp_path):
    """kube-apiserver gzips answers over 128 KiB for clients that ask for gzip, as kubectl and we do;
    --disable-compression asks for none."""
    from kubectl_waypoint.sim.large import generate_fleet_scenario

    with SimCluster(generate_fleet_scenario(namespaces=60)) as sim:
        kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"))
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        theirs = run_kubectl(["--kubeconfig", kubeconfig, "get", "pods", "-A", "-o", "name"], env, str(tmp_path / "c"))
        assert theirs.returncode == 0, theirs.stderr
        sim.clear_requests()
        compressed = json.loads(run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json").stdout)
        gzipped = [r for r in sim.requests if r.gzipped]
        sim.clear_requests()
        plain = json.loads(run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json", "--disable-compression").stdout)
        assert not any(r.gzipped for r in sim.requests)
    assert gzipped, "no answer was large enough to be compressed: make the scenario larger"
    assert compressed == plain
