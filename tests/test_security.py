"""Security guarantees as tests: the tool changes nothing, prints no secret, and passes user input
to a pod only as whole argv elements (or refuses it with exit 2)."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import ssl
import sys

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import one_line_error, unexpected_writes
from kubectl_waypoint.__main__ import main
from kubectl_waypoint.probe.curl import glob_escape
from kubectl_waypoint.sim import SimCluster
from kubectl_waypoint.sim.certs import make_tls_files

STATIC = ("--skip", "routing,authorization")
VERBOSITY = ((), ("-v", "6"), ("-v=9",))  # kubectl levels: 6 logs each request, 9 adds tracebacks
INJECTION = settings(max_examples=40, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# -- read-only ---------------------------------------------------------------------------------

@pytest.mark.allow_writes
def test_the_read_only_guard_sees_writes_and_allows_access_reviews():
    """conftest's `read_only` fixture checks every test with this; here it must catch a real write."""
    with SimCluster("bookinfo") as sim:
        context = ssl.create_default_context(cafile=sim.ca_file)
        for method, path, body in (("DELETE", "/api/v1/namespaces/bookinfo/pods/x", None),
                                   ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                    {"spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}}}),
                                   ("PATCH", "/api/v1/namespaces/bookinfo", {})):
            connection = http.client.HTTPSConnection("127.0.0.1", sim.port, context=context)
            connection.request(method, path, body=json.dumps(body) if body is not None else None,
                               headers={"Authorization": f"Bearer {sim.token}", "Content-Type": "application/json"})
            connection.getresponse().read()
            connection.close()
        assert [(r.method, r.path) for r in unexpected_writes(sim)] == [
            ("DELETE", "/api/v1/namespaces/bookinfo/pods/x"), ("PATCH", "/api/v1/namespaces/bookinfo")]


# -- no secret printed ---------------------------------------------------------------------------

@pytest.fixture
def run_raw(capsys):
    """Run the CLI in-process and return (code, stdout + stderr); tracebacks allowed (-v prints them)."""

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out + err

    yield run
    root = logging.getLogger()  # -v pointed logging at this test's captured stderr
    root.handlers.clear()
    root.setLevel(logging.WARNING)


def rewrite_user(kubeconfig: str, user: dict) -> str:
    doc = yaml.safe_load(open(kubeconfig))
    doc["users"][0]["user"] = user
    with open(kubeconfig, "w") as f:
        yaml.safe_dump(doc, f)
    return kubeconfig


def exec_plugin(tmp_path, stdout: str) -> dict:
    script = tmp_path / "credential-plugin"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write({stdout!r})\n")
    script.chmod(0o700)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script),
                     "interactiveMode": "Never"}}


def assert_never_printed(run_raw, kubeconfig: str, secrets: list[str], sim: SimCluster | None = None,
                         expect: set[int] = frozenset({0})) -> None:
    """skew and verify at every verbosity, on the path `sim`'s faults make: no secret in any output."""
    for command in (("skew",), ("verify", *STATIC)):
        for verbosity in VERBOSITY:
            code, output = run_raw(*verbosity, *command, "--kubeconfig", kubeconfig)
            assert code in expect, output
            for secret in secrets:
                assert secret not in output, f"{secret[:6]}... printed by {verbosity} {command}"
            if verbosity == ("-v=9",) and code == 0:
                assert "debug: " in output  # the debug log really was on


@pytest.fixture
def bookinfo(tmp_path):
    with SimCluster("bookinfo") as sim:
        yield sim, sim.write_kubeconfig(str(tmp_path / "kubeconfig"), namespace="bookinfo")


def test_the_bearer_token_is_never_printed(run_raw, bookinfo):
    sim, kubeconfig = bookinfo
    assert_never_printed(run_raw, kubeconfig, [sim.token])
    sim.deny("list", "pods")  # error path: skew exits 3, verify's checks become inconclusive
    assert_never_printed(run_raw, kubeconfig, [sim.token], expect={3, 4})


def test_a_rejected_token_is_never_printed(run_raw, bookinfo):
    _, kubeconfig = bookinfo
    rejected = "rejected-token-0123456789abcdef"
    rewrite_user(kubeconfig, {"token": rejected})
    assert_never_printed(run_raw, kubeconfig, [rejected], expect={3})


def test_client_keys_are_never_printed(run_raw, bookinfo, tmp_path):
    sim, kubeconfig = bookinfo
    (tmp_path / "client").mkdir()
    (tmp_path / "other").mkdir()
    files = make_tls_files(str(tmp_path / "client"))
    key_pem = open(files.server_key).read()
    key_data = base64.b64encode(key_pem.encode()).decode()
    cert_data = base64.b64encode(open(files.server_cert, "rb").read()).decode()
    rewrite_user(kubeconfig, {"token": sim.token, "client-certificate-data": cert_data, "client-key-data": key_data})
    body = "".join(key_pem.strip().splitlines()[1:-1])
    secrets = [sim.token, key_data, key_data[:40], body[:40]]
    assert_never_printed(run_raw, kubeconfig, secrets)
    # A key that does not match its certificate: the error path must not quote either.
    other = make_tls_files(str(tmp_path / "other"))
    rewrite_user(kubeconfig, {"token": sim.token, "client-certificate-data": cert_data,
                              "client-key-data": base64.b64encode(open(other.ca_cert, "rb").read()).decode()})
    assert_never_printed(run_raw, kubeconfig, [sim.token, cert_data[:40]], expect={3})


def test_exec_credential_output_is_never_printed(run_raw, bookinfo, tmp_path):
    sim, kubeconfig = bookinfo
    credential = json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1",
                             "status": {"token": sim.token}})
    rewrite_user(kubeconfig, exec_plugin(tmp_path, credential))
    assert_never_printed(run_raw, kubeconfig, [sim.token])
    # A plugin that prints something else, secret included: refused without quoting it.
    rewrite_user(kubeconfig, exec_plugin(tmp_path, f"token={sim.token}\n"))
    assert_never_printed(run_raw, kubeconfig, [sim.token], expect={3})
    code, output = run_raw("skew", "--kubeconfig", kubeconfig)
    assert "did not print an ExecCredential" in one_line_error(output)


def test_a_kubeconfig_that_is_not_yaml_is_not_quoted(run_raw, tmp_path):
    secret = "s3cret-token-in-a-broken-file"
    broken = tmp_path / "broken"
    broken.write_text(f"users:\n- name: u\n  user: {{token: {secret}\n  : [\n")
    for verbosity in VERBOSITY:
        code, output = run_raw(*verbosity, "skew", "--kubeconfig", str(broken))
        assert code == 3 and secret not in output


# -- no injection --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recording_cluster(tmp_path_factory):
    """bookinfo, where every exec is recorded and answered as if curl could not connect."""
    sim = SimCluster("bookinfo").start()
    argvs: list[list[str]] = []

    def record(request, streams) -> int:
        argvs.append(list(request.argv))
        streams.write_stderr("curl: (7) Failed to connect\n")
        return 7

    sim.set_exec_handler(record)
    yield sim, sim.write_kubeconfig(str(tmp_path_factory.mktemp("inject") / "kubeconfig")), argvs
    sim.stop()


anything = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
# Mostly plausible values full of shell and curl metacharacters, sometimes anything at all.
visible = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")) | st.sampled_from(
    list("$`;|&<>(){}[]*?~!#'\"\\%@=-")), min_size=1, max_size=40)
urls = st.one_of(st.builds("http://reviews.bookinfo:9080/{}".format, visible),
                 st.builds("http://reviews.bookinfo:9080/{}?{}#{}".format, visible, visible, visible),
                 st.builds("https://{}/".format, visible), anything)
headers = st.one_of(st.builds("X-{}: {}".format, st.from_regex(r"[A-Za-z0-9-]{1,8}", fullmatch=True), visible),
                    st.builds("X-A: {} {}".format, visible, visible), anything)
methods = st.one_of(st.sampled_from(["GET", "POST", "DELETE"]), st.from_regex(r"[A-Za-z!#$%&'*+.^_`|~-]{1,10}",
                                                                            fullmatch=True), anything)


def after(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


@INJECTION
@given(url=urls, header=headers, method=methods, match=st.builds(re.escape, visible) | visible)
def test_user_strings_reach_the_pod_as_whole_argv_elements_or_exit_2(run_cli, recording_cluster, url, header,
                                                                     method, match):
    sim, kubeconfig, argvs = recording_cluster
    argvs.clear()
    result = run_cli("probe", "--kubeconfig", kubeconfig, "-n", "curl", "deploy/curl", url, "-H", header,
                     "--method", method, "--match", match, "--count", "1", "-o", "json", expect=None)
    if result.code == 2:
        event("refused with exit 2")
        one_line_error(result.stderr)
        assert argvs == []  # refused before anything reached the pod
        return
    event("sent to the pod")  # a good share of examples must get here
    (argv,) = argvs
    assert argv[0] == "curl"
    assert after(argv, "--request") == [method]
    assert after(argv, "--header") == ["Connection: close", header]
    assert after(argv, "--url") == [glob_escape(url.split("#", 1)[0]) + "#[1-1]"]
    assert match not in argv or match in (method, header, "curl") or match in argv[:13]  # --match stays local


@INJECTION
@given(name=anything, namespace=anything)
def test_client_and_namespace_names_stay_inside_one_path_segment(run_cli, recording_cluster, name, namespace):
    sim, kubeconfig, argvs = recording_cluster
    sim.clear_requests()
    argvs.clear()
    result = run_cli("probe", "--kubeconfig", kubeconfig, "-n", namespace or "curl", f"pod/{name}",
                     "http://reviews.bookinfo:9080/", "--count", "1", expect=None)
    assert result.code in (1, 2, 3, 4), result.stderr
    if result.code != 1 and name.isprintable() and namespace.isprintable():
        one_line_error(result.stderr)  # (messages quote names raw: control characters would break the line)
    for record in sim.requests:
        if record.resource == "pods" and record.name:
            assert (record.namespace, record.name) == (namespace or "curl", name)
        assert record.verb in ("get", "list", "create") and not unexpected_writes(sim)
