"""kubeconfig resolution as kubectl does it: merge order, overrides, paths, in-cluster, exec plugins."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest
import yaml

from kubectl_waypoint.errors import BadInput, ClusterUnavailable, ExitCode
from kubectl_waypoint.kube.config import ClusterFlags, go_duration, parse_duration, resolve_target
from kubectl_waypoint.kube.credentials import CredentialSource

SECRET = "s3cr3t-t0ken-do-not-print"
EXEC_V1 = "client.authentication.k8s.io/v1"


def write_kubeconfig(path, *, current=None, clusters=None, contexts=None, users=None, extra=None):
    """Write a kubeconfig; clusters/contexts/users map names to their inner mappings."""
    document = {"apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": n, "cluster": c} for n, c in (clusters or {}).items()],
                "contexts": [{"name": n, "context": c} for n, c in (contexts or {}).items()],
                "users": [{"name": n, "user": u} for n, u in (users or {}).items()]}
    if current is not None:
        document["current-context"] = current
    document.update(extra or {})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as stream:
        yaml.safe_dump(document, stream)
    return str(path)


def simple_kubeconfig(path, name="a", server="https://a.example:6443", namespace=None, token="token-a", **user):
    context = {"cluster": f"{name}-cluster", "user": f"{name}-user"}
    if namespace:
        context["namespace"] = namespace
    return write_kubeconfig(path, current=name, clusters={f"{name}-cluster": {"server": server}},
                            contexts={name: context}, users={f"{name}-user": {"token": token, **user}})


def resolve(tmp_path, env=None, **flags):
    """resolve_target isolated from the real machine: no HOME config, no service account."""
    return resolve_target(ClusterFlags(**flags), environ=env or {}, home=str(tmp_path / "home"),
                          service_account_dir=str(tmp_path / "no-service-account"))


def read(path):
    with open(path) as stream:
        return stream.read()


def authorization(target):
    """The Authorization header the target's requests carry (reads token files, runs exec plugins)."""
    return CredentialSource(target.connection, target.environ).authorization()


# -- choosing files --------------------------------------------------------------------------

def test_single_file_gives_its_current_context(tmp_path):
    path = simple_kubeconfig(tmp_path / "config", namespace="team")
    target = resolve(tmp_path, kubeconfig=path)
    assert (target.context, target.cluster, target.user) == ("a", "a-cluster", "a-user")
    assert (target.server, target.namespace, target.namespace_explicit) == ("https://a.example:6443", "team", False)
    assert (target.request_timeout, target.in_cluster) == (None, False)


def test_first_kubeconfig_file_wins_current_context_and_every_named_entry(tmp_path):
    first = write_kubeconfig(tmp_path / "one" / "config", current="shared",
                             clusters={"c": {"server": "https://first:6443"}},
                             contexts={"shared": {"cluster": "c", "user": "u", "namespace": "first-ns"}},
                             users={"u": {"token": "first-token"}})
    second = write_kubeconfig(tmp_path / "two" / "config", current="other",
                              clusters={"c": {"server": "https://second:6443"}, "c2": {"server": "https://c2:6443"}},
                              contexts={"shared": {"cluster": "c2", "user": "u", "namespace": "second-ns"},
                                        "other": {"cluster": "c2", "user": "u"}},
                              users={"u": {"token": "second-token"}})
    target = resolve(tmp_path, env={"KUBECONFIG": os.pathsep.join([first, second])})
    assert (target.context, target.cluster, target.server, target.namespace) == (
        "shared", "c", "https://first:6443", "first-ns")
    assert authorization(target) == "Bearer first-token"
    # Entries only the second file defines are still reachable.
    assert resolve(tmp_path, env={"KUBECONFIG": os.pathsep.join([first, second])}, context="other").server == \
        "https://c2:6443"


def test_current_context_comes_from_the_first_file_that_sets_it(tmp_path):
    first = write_kubeconfig(tmp_path / "one", clusters={"c": {"server": "https://first:6443"}},
                             contexts={"from-first": {"cluster": "c"}})
    second = simple_kubeconfig(tmp_path / "two", name="b", server="https://second:6443")
    target = resolve(tmp_path, env={"KUBECONFIG": os.pathsep.join([first, second])})
    assert (target.context, target.server) == ("b", "https://second:6443")


def test_empty_and_missing_kubeconfig_entries_are_skipped(tmp_path):
    present = simple_kubeconfig(tmp_path / "present")
    empty_file = tmp_path / "empty"
    empty_file.write_text("")
    listed = os.pathsep.join([str(tmp_path / "missing"), "", str(empty_file), present])
    assert resolve(tmp_path, env={"KUBECONFIG": listed}).server == "https://a.example:6443"


def test_kubeconfig_flag_ignores_the_environment(tmp_path):
    from_env = simple_kubeconfig(tmp_path / "env", name="env", server="https://env:6443")
    from_flag = simple_kubeconfig(tmp_path / "flag", name="flag", server="https://flag:6443")
    target = resolve(tmp_path, env={"KUBECONFIG": from_env}, kubeconfig=from_flag)
    assert (target.context, target.server) == ("flag", "https://flag:6443")


def test_home_config_is_used_without_kubeconfig_variable(tmp_path):
    simple_kubeconfig(tmp_path / "home" / ".kube" / "config", name="home", server="https://home:6443")
    assert resolve(tmp_path).server == "https://home:6443"
    assert resolve(tmp_path, env={"KUBECONFIG": ""}).server == "https://home:6443"


def test_kubeconfig_variable_with_only_missing_files_does_not_fall_back_to_home(tmp_path):
    simple_kubeconfig(tmp_path / "home" / ".kube" / "config")
    with pytest.raises(ClusterUnavailable) as caught:
        resolve(tmp_path, env={"KUBECONFIG": str(tmp_path / "gone")})
    assert caught.value.message.startswith("no kubeconfig found: set KUBECONFIG, pass --kubeconfig, or run inside a pod")
    assert str(tmp_path / "gone") in caught.value.message


# -- in-cluster ------------------------------------------------------------------------------

def service_account(tmp_path, namespace="pods-ns"):
    folder = tmp_path / "sa"
    folder.mkdir()
    (folder / "token").write_text(SECRET)
    (folder / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    if namespace is not None:
        (folder / "namespace").write_text(namespace + "\n")
    return str(folder)


@pytest.mark.parametrize("host, extra_env, namespace_flag, server, namespace", [
    ("10.96.0.1", {}, None, "https://10.96.0.1:443", "pods-ns"),
    ("fd00::1", {}, None, "https://[fd00::1]:443", "pods-ns"),
    ("10.96.0.1", {"POD_NAMESPACE": "from-downward-api"}, None, "https://10.96.0.1:443", "from-downward-api"),
    ("10.96.0.1", {}, "flag-ns", "https://10.96.0.1:443", "flag-ns"),
])
def test_in_cluster_service_account(tmp_path, host, extra_env, namespace_flag, server, namespace):
    env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": "443", **extra_env}
    target = resolve_target(ClusterFlags(namespace=namespace_flag), environ=env, home=str(tmp_path / "home"),
                            service_account_dir=service_account(tmp_path))
    assert (target.in_cluster, target.context, target.server, target.namespace) == (True, None, server, namespace)
    assert target.namespace_explicit is (namespace_flag is not None)
    assert (target.connection.server, target.connection.tls.ca_file) == (server, os.path.join(tmp_path, "sa", "ca.crt"))
    assert authorization(target) == f"Bearer {SECRET}"


def test_in_cluster_without_namespace_file_uses_default(tmp_path):
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    target = resolve_target(ClusterFlags(), environ=env, home=str(tmp_path / "home"),
                            service_account_dir=service_account(tmp_path, namespace=None))
    assert target.namespace == "default"


def test_in_cluster_needs_the_token_file(tmp_path):
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(ClusterUnavailable, match="no kubeconfig found"):
        resolve(tmp_path, env=env)


def test_kubeconfig_wins_over_in_cluster_but_borrows_the_pod_namespace(tmp_path):
    # kubectl does this: a context without a namespace falls back to the pod's namespace.
    path = simple_kubeconfig(tmp_path / "config")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    target = resolve_target(ClusterFlags(kubeconfig=path), environ=env, home=str(tmp_path / "home"),
                            service_account_dir=service_account(tmp_path))
    assert (target.in_cluster, target.server, target.namespace) == (False, "https://a.example:6443", "pods-ns")


def test_kubeconfig_without_current_context_falls_back_to_in_cluster(tmp_path):
    path = write_kubeconfig(tmp_path / "config", clusters={"c": {"server": "https://c:6443"}},
                            contexts={"x": {"cluster": "c"}})
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    target = resolve_target(ClusterFlags(kubeconfig=path), environ=env, home=str(tmp_path / "home"),
                            service_account_dir=service_account(tmp_path))
    assert (target.in_cluster, target.server) == (True, "https://10.0.0.1:443")


# -- overrides and namespace -----------------------------------------------------------------

@pytest.fixture
def two_of_each(tmp_path):
    return write_kubeconfig(
        tmp_path / "config", current="dev",
        clusters={"dev-c": {"server": "https://dev:6443"}, "prod-c": {"server": "https://prod:6443"}},
        contexts={"dev": {"cluster": "dev-c", "user": "dev-u", "namespace": "dev-ns"},
                  "prod": {"cluster": "prod-c", "user": "prod-u"}},
        users={"dev-u": {"token": "dev-token"}, "prod-u": {"token": "prod-token"}})


@pytest.mark.parametrize("flags, expected", [
    ({}, ("dev", "dev-c", "dev-u", "https://dev:6443", "dev-ns", False)),
    ({"context": "prod"}, ("prod", "prod-c", "prod-u", "https://prod:6443", "default", False)),
    ({"cluster": "prod-c"}, ("dev", "prod-c", "dev-u", "https://prod:6443", "dev-ns", False)),
    ({"user": "prod-u"}, ("dev", "dev-c", "prod-u", "https://dev:6443", "dev-ns", False)),
    ({"context": "prod", "namespace": "mine"}, ("prod", "prod-c", "prod-u", "https://prod:6443", "mine", True)),
    ({"namespace": "mine"}, ("dev", "dev-c", "dev-u", "https://dev:6443", "mine", True)),
])
def test_flags_override_the_context(tmp_path, two_of_each, flags, expected):
    target = resolve(tmp_path, kubeconfig=two_of_each, **flags)
    assert (target.context, target.cluster, target.user, target.server, target.namespace,
            target.namespace_explicit) == expected


def test_user_flag_changes_the_credentials(tmp_path, two_of_each):
    target = resolve(tmp_path, kubeconfig=two_of_each, user="prod-u")
    assert authorization(target) == "Bearer prod-token"


def test_cluster_flag_works_without_any_context(tmp_path):
    path = write_kubeconfig(tmp_path / "config", clusters={"c": {"server": "https://c:6443"}},
                            users={"u": {"token": "t"}})
    target = resolve(tmp_path, kubeconfig=path, cluster="c", user="u")
    assert (target.context, target.cluster, target.user, target.server) == (None, "c", "u", "https://c:6443")
    assert authorization(target) == "Bearer t"


def test_context_naming_a_missing_user_is_anonymous_like_kubectl(tmp_path):
    path = write_kubeconfig(tmp_path / "config", current="x", clusters={"c": {"server": "https://c:6443"}},
                            contexts={"x": {"cluster": "c", "user": "ghost"}})
    target = resolve(tmp_path, kubeconfig=path)
    assert authorization(target) is None and target.connection.tls.cert_file is None


@pytest.mark.parametrize("timeout, seconds", [(None, None), ("0", None), ("45s", 45.0), ("2", 2.0)])
def test_request_timeout_flag(tmp_path, two_of_each, timeout, seconds):
    assert resolve(tmp_path, kubeconfig=two_of_each, request_timeout=timeout).request_timeout == seconds


# -- paths and TLS material ------------------------------------------------------------------

def test_relative_paths_resolve_against_the_file_that_defined_each_entry(tmp_path, monkeypatch):
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    (dir_a / "certs").mkdir(parents=True)
    (dir_b / "pki").mkdir(parents=True)
    (dir_a / "certs" / "client.crt").write_text("CLIENT CERT A")
    (dir_a / "certs" / "client.key").write_text("CLIENT KEY A")
    (dir_a / "token").write_text(SECRET + "\n")  # kubectl trims a token file's whitespace
    (dir_b / "pki" / "ca.crt").write_text("CA OF B")
    write_kubeconfig(dir_a / "config", current="mixed",
                              contexts={"mixed": {"cluster": "b-cluster", "user": "a-user"}},
                              users={"a-user": {"client-certificate": "certs/client.crt",
                                                "client-key": "certs/client.key", "tokenFile": "token"}})
    write_kubeconfig(dir_b / "config", current="other",
                              clusters={"b-cluster": {"server": "https://b:6443", "certificate-authority": "pki/ca.crt"}})
    monkeypatch.chdir(tmp_path)  # relative to the files, never to the working directory
    target = resolve(tmp_path, env={"KUBECONFIG": os.pathsep.join(["a/config", "b/config"])})
    tls = target.connection.tls
    assert tls.ca_file == str(dir_b / "pki" / "ca.crt")
    assert (tls.cert_file, tls.key_file) == (str(dir_a / "certs" / "client.crt"), str(dir_a / "certs" / "client.key"))
    assert authorization(target) == f"Bearer {SECRET}"


def test_inline_tls_data_and_insecure_flag_reach_the_configuration(tmp_path):
    def b64(text):
        return base64.b64encode(text.encode()).decode()

    path = write_kubeconfig(
        tmp_path / "config", current="x",
        clusters={"secure": {"server": "https://s:6443/", "certificate-authority-data": b64("INLINE CA"),
                             "tls-server-name": "api.internal"},
                  "insecure": {"server": "https://i:6443", "insecure-skip-tls-verify": True}},
        contexts={"x": {"cluster": "secure", "user": "u"}, "y": {"cluster": "insecure", "user": "u"}},
        users={"u": {"client-certificate-data": b64("INLINE CERT"), "client-key-data": b64("INLINE KEY")}})
    secure = resolve(tmp_path, kubeconfig=path).connection
    assert secure.server == "https://s:6443" and secure.tls.insecure is False
    assert secure.tls.server_name == "api.internal"
    assert [secure.tls.ca_data, secure.tls.cert_data, secure.tls.key_data] == [b"INLINE CA", b"INLINE CERT", b"INLINE KEY"]
    assert resolve(tmp_path, kubeconfig=path, context="y").connection.tls.insecure is True


def test_resolving_does_not_import_kubernetes(tmp_path):
    path = simple_kubeconfig(tmp_path / "config")
    code = ("import sys; from kubectl_waypoint.kube.config import ClusterFlags, resolve_target; "
            f"resolve_target(ClusterFlags(kubeconfig={path!r}), environ={{}}); print('kubernetes' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def find_kubectl():
    beside_python = os.path.join(os.path.dirname(sys.executable), "kubectl")
    return shutil.which("kubectl") or (beside_python if os.access(beside_python, os.X_OK) else None)


@pytest.mark.skipif(find_kubectl() is None, reason="kubectl is not installed")
@pytest.mark.parametrize("context", [None, "other", "mixed"])
def test_same_choice_and_files_as_real_kubectl(tmp_path, monkeypatch, context):
    """kubectl itself is the reference: `config view --minify --flatten` inlines the files it resolved."""
    for name in ("a/pki/ca.crt", "a/certs/a.crt", "a/certs/a.key", "b/ca2.crt", "b/x/b.crt", "b/b.key"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"content of {name}\n")
    write_kubeconfig(tmp_path / "a" / "config", current="shared",
                     clusters={"c": {"server": "https://first:6443", "certificate-authority": "pki/ca.crt"}},
                     contexts={"shared": {"cluster": "c", "user": "ua", "namespace": "first-ns"}},
                     users={"ua": {"client-certificate": "certs/a.crt", "client-key": "certs/a.key"}})
    write_kubeconfig(tmp_path / "b" / "config", current="other",
                     clusters={"c": {"server": "https://second:6443", "certificate-authority": "ca2.crt"},
                               "c2": {"server": "https://c2:6443", "certificate-authority": "ca2.crt"}},
                     contexts={"shared": {"cluster": "c2", "user": "ub"}, "other": {"cluster": "c2", "user": "ub"},
                               "mixed": {"cluster": "c", "user": "ua", "namespace": "mixed-ns"}},
                     users={"ub": {"client-certificate": "x/b.crt", "client-key": "b.key"},
                            "ua": {"client-certificate": "x/b.crt", "client-key": "b.key"}})
    monkeypatch.chdir(tmp_path)
    env = {"KUBECONFIG": os.pathsep.join(["a/config", "b/config"]), "HOME": str(tmp_path / "home")}
    argv = [find_kubectl(), "config", "view", "--minify", "--flatten", "-o", "json"]
    view = json.loads(subprocess.run(argv + (["--context", context] if context else []), env=env,
                                     capture_output=True, text=True, check=True).stdout)
    cluster, user, chosen = view["clusters"][0], view["users"][0], view["contexts"][0]

    target = resolve_target(ClusterFlags(context=context), environ=env, service_account_dir=str(tmp_path / "none"))
    tls = target.connection.tls
    assert (target.context, target.cluster, target.user, target.server, target.namespace) == (
        view["current-context"], cluster["name"], user["name"], cluster["cluster"]["server"],
        chosen["context"].get("namespace", "default"))
    assert [read(f) for f in (tls.ca_file, tls.cert_file, tls.key_file)] == [
        base64.b64decode(data).decode() for data in (cluster["cluster"]["certificate-authority-data"],
                                                     user["user"]["client-certificate-data"],
                                                     user["user"]["client-key-data"])]


# -- errors ----------------------------------------------------------------------------------

def error_cases(tmp_path):
    """(name, flags, env, expected exit code, expected fragment) built on files holding SECRET."""
    good = write_kubeconfig(
        tmp_path / "good", current="ok",
        clusters={"ok-c": {"server": "https://ok:6443"}, "no-server": {"certificate-authority-data": "Zm9v"},
                  "both": {"server": "https://b:6443", "insecure-skip-tls-verify": True,
                           "certificate-authority-data": "Zm9v"}},
        contexts={"ok": {"cluster": "ok-c", "user": "u"}, "dangling": {"cluster": "gone-c", "user": "u"},
                  "clusterless": {"user": "u"}, "serverless": {"cluster": "no-server", "user": "u"},
                  "conflict": {"cluster": "both", "user": "u"}},
        users={"u": {"token": SECRET, "password": SECRET}})
    no_current = write_kubeconfig(tmp_path / "no-current", clusters={"c": {"server": "https://c:6443"}},
                                  users={"u": {"token": SECRET}})
    stale_current = write_kubeconfig(tmp_path / "stale", current="removed", users={"u": {"token": SECRET}})
    broken = tmp_path / "broken"
    broken.write_text(f"users:\n- name: u\n  user:\n    token: {SECRET}\n  bad: [unclosed\n")
    a_list = tmp_path / "list"
    a_list.write_text(f"- {SECRET}\n")
    duplicate = tmp_path / "duplicate"
    duplicate.write_text(f"users:\n- name: u\n  user: {{token: {SECRET}}}\n- name: u\n  user: {{token: x}}\n")
    return [
        ("missing --kubeconfig", {"kubeconfig": str(tmp_path / "nope")}, {}, ExitCode.CLUSTER,
         f'kubeconfig "{tmp_path / "nope"}" not found: '),
        ("malformed YAML", {"kubeconfig": str(broken)}, {}, ExitCode.CLUSTER,
         f'kubeconfig "{broken}" is not valid YAML at line'),
        ("not a mapping", {"kubeconfig": str(a_list)}, {}, ExitCode.CLUSTER, f'kubeconfig "{a_list}" is malformed'),
        ("duplicate names", {"kubeconfig": str(duplicate)}, {}, ExitCode.CLUSTER, 'users has two entries named "u"'),
        ("unknown --context", {"kubeconfig": good, "context": "nope"}, {}, ExitCode.CLUSTER,
         'context "nope" does not exist in the kubeconfig'),
        ("stale current-context", {"kubeconfig": stale_current}, {}, ExitCode.CLUSTER,
         'current context "removed" does not exist in the kubeconfig'),
        ("no current context", {"kubeconfig": no_current}, {}, ExitCode.CLUSTER,
         "no current context is set: pass --context or run kubectl config use-context"),
        ("unknown --cluster", {"kubeconfig": good, "cluster": "nope-c"}, {}, ExitCode.CLUSTER,
         'cluster "nope-c" given by --cluster does not exist'),
        ("unknown --user", {"kubeconfig": good, "user": "nope-u"}, {}, ExitCode.CLUSTER,
         'user "nope-u" given by --user does not exist'),
        ("context with missing cluster", {"kubeconfig": good, "context": "dangling"}, {}, ExitCode.CLUSTER,
         'context "dangling" refers to cluster "gone-c", which does not exist'),
        ("context without cluster", {"kubeconfig": good, "context": "clusterless"}, {}, ExitCode.CLUSTER,
         'context "clusterless" names no cluster'),
        ("cluster without server", {"kubeconfig": good, "context": "serverless"}, {}, ExitCode.CLUSTER,
         'cluster "no-server" has no server'),
        ("insecure with a CA", {"kubeconfig": good, "context": "conflict"}, {}, ExitCode.CLUSTER,
         'the cluster of user "u" of context "conflict" sets both insecure-skip-tls-verify and a certificate authority'),
        ("nothing at all", {}, {}, ExitCode.CLUSTER,
         "no kubeconfig found: set KUBECONFIG, pass --kubeconfig, or run inside a pod"),
        ("bad --request-timeout", {"kubeconfig": good, "request_timeout": "abc"}, {}, ExitCode.USAGE,
         'invalid value "abc" for --request-timeout: use a duration such as 30s or 1m'),
    ]


def test_every_resolution_error_has_its_exit_code_and_sentence_and_no_secret(tmp_path):
    for name, flags, env, exit_code, fragment in error_cases(tmp_path):
        with pytest.raises((ClusterUnavailable, BadInput)) as caught:
            resolve(tmp_path, env=env, **flags)
        assert caught.value.exit_code == exit_code, name
        assert fragment in caught.value.message, (name, caught.value.message)
        assert SECRET not in caught.value.message and "\n" not in caught.value.message, name


@pytest.mark.parametrize("user, fragment", [
    ({"tokenFile": "missing-token"}, 'the token file "{dir}/missing-token" of user "u" of context "x" cannot be read'),
    ({"token": SECRET, "client-certificate": "missing.crt", "client-key": "missing.key"},
     'the file "{dir}/missing.crt" given by client-certificate in the kubeconfig for user "u" of context "x" '
     "cannot be read"),
    ({"token": SECRET, "client-certificate-data": "not base64!", "client-key-data": "eA=="},
     'client-certificate-data of user "u" of context "x" is not valid base64'),
])
def test_credential_errors_surface_before_any_request(tmp_path, user, fragment):
    """kubectl checks the files a kubeconfig names before it sends anything; so do we."""
    path = write_kubeconfig(tmp_path / "config", current="x", clusters={"c": {"server": "https://c:6443"}},
                            contexts={"x": {"cluster": "c", "user": "u"}}, users={"u": user})
    with pytest.raises(ClusterUnavailable) as caught:
        resolve(tmp_path, kubeconfig=path)
    assert caught.value.exit_code == ExitCode.CLUSTER
    assert fragment.format(dir=tmp_path) in caught.value.message
    assert SECRET not in caught.value.message


# -- durations -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("0", None), ("0s", None), ("", None), ("30s", 30.0), ("1m", 60.0), ("1h30m", 5400.0), ("500ms", 0.5),
    ("1.5s", 1.5), ("10", 10.0), ("250us", 0.00025), ("2h45m30.5s", 9930.5), (".5s", 0.5),
])
def test_parse_duration_accepts_go_durations_and_bare_seconds(text, seconds):
    assert parse_duration(text) == (None if seconds is None else pytest.approx(seconds))


@pytest.mark.parametrize("text", ["abc", "-1s", "1h30", "1d", "30 s", " 30s", "s", ".", "1.5"])
def test_parse_duration_rejects_everything_else(text):
    with pytest.raises(BadInput) as caught:
        parse_duration(text, flag="--wait")
    assert caught.value.message == f'invalid value "{text}" for --wait: use a duration such as 30s or 1m'
    assert caught.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("flag, query", [("20s", "20s"), ("90s", "1m30s"), ("1.5s", "1.5s"), ("2", "2s"), ("1h", "1h0m0s"),
                                         ("250ms", "250ms"), ("1h0m0.5s", "1h0m0.5s"), ("1.5ms", "1.5ms")])
def test_request_timeout_is_told_to_the_server_in_gos_words(flag, query):
    """The first five were measured: kubectl --request-timeout FLAG sends ?timeout=QUERY."""
    assert go_duration(parse_duration(flag)) == query


# -- exec credential plugins -----------------------------------------------------------------

def write_plugin(path, body):
    """A tiny POSIX shell credential plugin."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def exec_kubeconfig(tmp_path, exec_config, cluster_extra=None, user_extra=None):
    return write_kubeconfig(
        tmp_path / "kube" / "config", current="eks",
        clusters={"c": {"server": "https://c:6443", **(cluster_extra or {})}},
        contexts={"eks": {"cluster": "c", "user": "u"}},
        users={"u": {"exec": {"apiVersion": EXEC_V1, "interactiveMode": "Never", **exec_config},
                     **(user_extra or {})}})


def credential(status):
    return json.dumps({"apiVersion": EXEC_V1, "kind": "ExecCredential", "status": status})


def test_exec_plugin_token_with_args_env_and_exec_info(tmp_path, monkeypatch):
    write_plugin(tmp_path / "kube" / "bin" / "get-token", f"""\
        printf '%s' "$KUBERNETES_EXEC_INFO" > "{tmp_path}/exec-info"
        printf '{{"apiVersion":"{EXEC_V1}","kind":"ExecCredential","status":{{"token":"tok-%s-%s"}}}}' "$1" "$REGION"
    """)
    (tmp_path / "ca.pem").write_text("CA PEM")
    path = exec_kubeconfig(
        tmp_path,
        {"command": "./bin/get-token", "args": ["arg1"], "env": [{"name": "REGION", "value": "eu-1"}],
         "provideClusterInfo": True},
        cluster_extra={"certificate-authority": str(tmp_path / "ca.pem"),
                       "extensions": [{"name": "client.authentication.k8s.io/exec",
                                       "extension": {"audience": "waypoint"}}]})
    monkeypatch.chdir(tmp_path)  # the relative command resolves against the kubeconfig's folder
    assert authorization(resolve(tmp_path, env={"PATH": "/usr/bin:/bin"}, kubeconfig=path)) == "Bearer tok-arg1-eu-1"
    assert json.loads(read(tmp_path / "exec-info")) == {
        "kind": "ExecCredential", "apiVersion": EXEC_V1,
        "spec": {"interactive": False,
                 "cluster": {"server": "https://c:6443", "certificate-authority-data": base64.b64encode(b"CA PEM").decode(),
                             "config": {"audience": "waypoint"}}}}


@pytest.mark.skipif(find_kubectl() is None, reason="kubectl is not installed")
def test_exec_plugin_sees_what_real_kubectl_gives_it(tmp_path):
    seen = tmp_path / "seen"
    write_plugin(tmp_path / "bin" / "spy", f"""\
        {{ printf '%s' "$KUBERNETES_EXEC_INFO"; echo "REGION=$REGION args=$*"; }} > "{seen}"
        printf '{{"apiVersion":"{EXEC_V1}","kind":"ExecCredential","status":{{"token":"t"}}}}'
    """)
    path = write_kubeconfig(
        tmp_path / "config", current="x",
        clusters={"c": {"server": "https://127.0.0.1:1", "tls-server-name": "api.internal",
                        "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": {"audience": "w"}}]}},
        contexts={"x": {"cluster": "c", "user": "u"}},
        users={"u": {"exec": {"apiVersion": EXEC_V1, "command": "./bin/spy", "args": ["a1", "a 2"],
                              "env": [{"name": "REGION", "value": "eu-1"}], "provideClusterInfo": True,
                              "interactiveMode": "Never"}}})
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", os.defpath)}
    subprocess.run([find_kubectl(), "--kubeconfig", path, "get", "--raw", "/version", "--request-timeout", "5s"],
                   env=env, capture_output=True, check=False)  # port 1 refuses; the plugin has run by then
    from_kubectl = read(seen)
    seen.unlink()
    authorization(resolve(tmp_path, env=env, kubeconfig=path))
    assert read(seen) == from_kubectl


def test_exec_plugin_found_on_path_returning_a_client_certificate(tmp_path):
    bin_dir = tmp_path / "bin"
    status = {"clientCertificateData": "-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----\n",
              "clientKeyData": "-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n"}
    write_plugin(bin_dir / "cert-plugin", f"cat <<'EOF'\n{credential(status)}\nEOF\n")
    path = exec_kubeconfig(tmp_path, {"command": "cert-plugin"})
    target = resolve(tmp_path, env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, kubeconfig=path)
    source = CredentialSource(target.connection, target.environ)
    issued = source.client_certificate()
    assert (issued.cert_pem.decode(), issued.key_pem.decode()) == (status["clientCertificateData"],
                                                                   status["clientKeyData"])
    assert source.authorization() is None


def test_exec_token_is_cached_until_its_expiry_and_no_longer(tmp_path):
    counter = tmp_path / "runs"
    # Only the first answer carries an expiry: a refreshed token without one must not be fetched again.
    write_plugin(tmp_path / "kube" / "refresh", f"""\
        echo x >> "{counter}"
        runs=$(wc -l < "{counter}" | tr -d ' ')
        expiry=""
        [ "$runs" = 1 ] && expiry=',"expirationTimestamp":"'"$EXPIRY"'"'
        printf '{{"apiVersion":"{EXEC_V1}","kind":"ExecCredential","status":{{"token":"tok-%s"%s}}}}' "$runs" "$expiry"
    """)
    expired = exec_kubeconfig(tmp_path, {"command": "./refresh", "env": [{"name": "EXPIRY", "value": "2000-01-01T00:00:00Z"}]})
    target = resolve(tmp_path, kubeconfig=expired)
    source = CredentialSource(target.connection, target.environ)
    assert [source.authorization() for _ in range(3)] == ["Bearer tok-1", "Bearer tok-2", "Bearer tok-2"]
    assert read(counter).count("x") == 2

    counter.unlink()
    lasting = exec_kubeconfig(tmp_path, {"command": "./refresh", "env": [{"name": "EXPIRY", "value": "2999-01-01T00:00:00Z"}]})
    target = resolve(tmp_path, kubeconfig=lasting)
    source = CredentialSource(target.connection, target.environ)
    assert [source.authorization() for _ in range(3)] == ["Bearer tok-1"] * 3
    assert read(counter).count("x") == 1


def test_exec_plugin_is_skipped_when_the_user_has_a_client_certificate(tmp_path):
    path = exec_kubeconfig(tmp_path, {"command": "never-installed"},
                           user_extra={"client-certificate-data": base64.b64encode(b"CERT").decode(),
                                       "client-key-data": base64.b64encode(b"KEY").decode()})
    target = resolve(tmp_path, kubeconfig=path)
    assert target.connection.credentials.exec_config is None and target.connection.tls.cert_data == b"CERT"
    assert authorization(target) is None


@pytest.mark.parametrize("script, exec_extra, fragments", [
    (f"echo '{SECRET}' >&2\necho '{SECRET}'\nexit 3\n", {},
     ['exec credential plugin "{cmd}" for user "u" of context "eks" failed with exit code 3']),
    (f"echo 'not json {SECRET}'\n", {}, ['exec credential plugin "{cmd}" for user "u" of context "eks" did not print an ExecCredential']),
    ("printf '%s' '" + json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                                   "status": {"token": SECRET}}) + "'\n", {}, ["answered with another apiVersion"]),
    ("printf '%s' '" + credential({"clientCertificateData": SECRET}) + "'\n", {},
     ["returned a client certificate or key without the other"]),
    ("printf '%s' '" + credential({}) + "'\n", {}, ["returned neither a token nor a client certificate"]),
    ("exit 0\n", {"interactiveMode": "Always"}, ["needs a terminal (interactiveMode Always)"]),
    ("exit 0\n", {"apiVersion": "client.authentication.k8s.io/v1alpha1"},
     ['asks for apiVersion "client.authentication.k8s.io/v1alpha1"']),
])
def test_failing_exec_plugin_names_itself_and_the_context_but_not_its_output(tmp_path, script, exec_extra, fragments):
    command = write_plugin(tmp_path / "bin" / "flaky", script)
    target = resolve(tmp_path, kubeconfig=exec_kubeconfig(tmp_path, {"command": command, **exec_extra}))
    with pytest.raises(ClusterUnavailable) as caught:
        authorization(target)
    assert caught.value.exit_code == ExitCode.CLUSTER
    for fragment in fragments:
        assert fragment.format(cmd=command) in caught.value.message
    assert SECRET not in caught.value.message


@pytest.mark.parametrize("hint, expected", [
    ("Install it with:\n  gcloud components install gke-gcloud-auth-plugin\n",
     'exec credential plugin "gke-gcloud-auth-plugin" for user "u" of context "eks" was not found: '
     "Install it with: gcloud components install gke-gcloud-auth-plugin"),
    (None, 'exec credential plugin "gke-gcloud-auth-plugin" for user "u" of context "eks" was not found: '
           "install it or fix the command in the kubeconfig"),
])
def test_missing_exec_plugin_gives_its_install_hint(tmp_path, hint, expected):
    exec_config = {"command": "gke-gcloud-auth-plugin", **({"installHint": hint} if hint else {})}
    target = resolve(tmp_path, env={"PATH": str(tmp_path)}, kubeconfig=exec_kubeconfig(tmp_path, exec_config))
    with pytest.raises(ClusterUnavailable) as caught:
        authorization(target)
    assert caught.value.message == expected
