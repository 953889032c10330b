"""Pick the API server and credentials exactly as kubectl does (client-go's clientcmd rules).

The merge of KUBECONFIG files and the choice of context happen here, on plain dicts (the Python
client's merger lets a later file win `current-context`); kube/connection.py then applies
kubectl's flags to the chosen cluster and user. Nothing here talks to the network: the
credentials are fetched (token files read, exec plugins run) by kube/credentials.py on first use.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import unicodedata
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import yaml

from ..errors import BadInput, ClusterUnavailable
from ..kubectl_files import home_folder, kubeconfig_paths
from .connection import Connection, build_connection, cluster_overrides, merge_cluster, merge_user, user_overrides

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
EXEC_CLUSTER_EXTENSION = "client.authentication.k8s.io/exec"  # per-cluster config for exec plugins
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")

# The entries of each list, and which of their fields name files relative to the kubeconfig.
_SECTIONS = {"clusters": "cluster", "contexts": "context", "users": "user"}
_FILE_FIELDS = {"clusters": ("certificate-authority",), "contexts": (),
                "users": ("client-certificate", "client-key", "tokenFile")}


@dataclass(frozen=True)
class ClusterFlags:
    """kubectl's global flags, which a plugin has to take itself (genericclioptions.ConfigFlags)."""

    kubeconfig: str | None = None
    context: str | None = None
    cluster: str | None = None
    user: str | None = None
    namespace: str | None = None
    request_timeout: str | None = None  # kubectl syntax
    server: str | None = None
    token: str | None = field(default=None, repr=False)
    impersonate: str | None = None  # --as
    impersonate_groups: tuple[str, ...] = ()  # --as-group, repeatable
    impersonate_uid: str | None = None  # --as-uid
    certificate_authority: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    cache_dir: str | None = None  # accepted for kubectl's sake; the plugin caches no discovery
    disable_compression: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **replace: Any) -> "ClusterFlags":
        """The flags out of click's parameters (names as in cli.cluster_options)."""
        values = {f.name: params.get(f.name) for f in fields(cls) if params.get(f.name) is not None}
        values["impersonate_groups"] = tuple(values.get("impersonate_groups") or ())
        return cls(**{**values, **replace})


@dataclass
class KubeTarget:
    """The API server, identity and namespace one command talks to."""

    context: str | None  # None in-cluster, or when only --cluster/--server names the cluster
    cluster: str | None
    user: str | None
    server: str  # API server URL
    namespace: str  # -n, else the context's namespace, else "default"
    namespace_explicit: bool  # True when -n was given
    request_timeout: float | None  # seconds; None = no timeout (kubectl "0")
    in_cluster: bool
    connection: Connection = field(repr=False)
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)  # for exec plugins

    def describe(self) -> str:
        """Who is talking, for error messages: the context, else what stands in for it."""
        if self.in_cluster:
            return "the in-cluster service account"
        if self.context is not None:
            return f'context "{self.context}"'
        if self.cluster is not None:
            return f'cluster "{self.cluster}"'
        return f"the server {self.server}"


# -- durations -------------------------------------------------------------------------------

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str, flag: str = "--request-timeout") -> float | None:
    """Seconds for a Go duration or a bare count of seconds (kubectl's ParseTimeout); 0 means none."""
    if text == "" or re.fullmatch(r"\+?[0-9]+", text):
        seconds = float(text or 0)
    else:
        body = text[1:] if text[:1] == "+" else text
        parts = _DURATION_PART.findall(body)
        if not body or "".join(number + unit for number, unit in parts) != body:
            raise BadInput(f'invalid value "{text}" for {flag}: use a duration such as 30s or 1m')
        seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    return seconds or None


def go_duration(seconds: float) -> str:
    """Go's Duration.String(): `20s`, `1m30s`, `1h0m0s`, `1.5s`, `500ms` (kubectl's `timeout=` query)."""
    nanoseconds = round(seconds * 1e9)
    if nanoseconds < 1_000:
        return f"{nanoseconds}ns" if nanoseconds else "0s"
    if nanoseconds < 1_000_000:
        return _decimal(nanoseconds, 1_000) + "µs"
    if nanoseconds < 1_000_000_000:
        return _decimal(nanoseconds, 1_000_000) + "ms"
    hours, rest = divmod(nanoseconds, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = _decimal(rest, 10**9) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    return f"{hours}h" + text if hours else text


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    digits = len(str(unit)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0") if fraction else str(whole)


# -- loading and merging kubeconfig files ----------------------------------------------------

@dataclass(frozen=True)
class MergedKubeconfig:
    """Named entries merged first-wins across files, relative paths already made absolute."""

    files: tuple[str, ...]
    current_context: str | None
    clusters: dict[str, dict]
    contexts: dict[str, dict]
    users: dict[str, dict]


def load_kubeconfig_file(path: str) -> dict | None:
    """One file's YAML as a dict ({} when empty); None when it does not exist."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ClusterUnavailable(f'kubeconfig "{path}" cannot be read: {error.strerror}') from error
    try:
        document = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        # str(error) quotes the offending lines, which may hold a token: report the position only.
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ClusterUnavailable(f'kubeconfig "{path}" is not valid YAML{where}: fix the file') from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ClusterUnavailable(f'kubeconfig "{path}" is malformed: expected a mapping with clusters, contexts and users')
    return document


def merge_kubeconfigs(documents: list[tuple[str, dict]]) -> MergedKubeconfig:
    """Merge as client-go does: the first file to name an entry or set current-context wins."""
    merged: dict[str, dict[str, dict]] = {section: {} for section in _SECTIONS}
    current_context = None
    for path, document in documents:
        base = os.path.abspath(os.path.dirname(path))
        for section, entries in _named_entries(path, document).items():
            for name, entry in entries.items():
                merged[section].setdefault(name, _resolve_paths(section, entry, base))
        if not current_context and document.get("current-context"):
            current_context = str(document["current-context"])
    return MergedKubeconfig(files=tuple(path for path, _ in documents), current_context=current_context,
                            clusters=merged["clusters"], contexts=merged["contexts"], users=merged["users"])


def _named_entries(path: str, document: dict) -> dict[str, dict[str, dict]]:
    """Each section's entries by name; a name used twice in one file is an error, as in kubectl."""
    sections: dict[str, dict[str, dict]] = {}
    for section, inner in _SECTIONS.items():
        entries = document.get(section) or []
        if not isinstance(entries, list):
            raise ClusterUnavailable(f'kubeconfig "{path}" is malformed: {section} must be a list')
        named: dict[str, dict] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get(inner) or {}, dict):
                raise ClusterUnavailable(f'kubeconfig "{path}" is malformed: every entry of {section} needs a {inner} mapping')
            name = str(entry.get("name") or "")
            if name in named:
                raise ClusterUnavailable(f'kubeconfig "{path}" is malformed: {section} has two entries named "{name}"; remove one')
            named[name] = entry.get(inner) or {}
        sections[section] = named
    return sections


def _resolve_paths(section: str, entry: dict, base: str) -> dict:
    """A copy of the entry with relative file references joined to its file's directory (ResolvePaths)."""
    resolved = json.loads(json.dumps(entry, default=str))  # deep copy; also turns YAML dates into strings
    for key in _FILE_FIELDS[section]:
        if key in resolved:
            resolved[key] = _join(base, resolved[key])
    exec_config = resolved.get("exec") if section == "users" else None
    if isinstance(exec_config, dict) and os.sep in str(exec_config.get("command") or ""):
        exec_config["command"] = _join(base, exec_config["command"])  # a bare name is looked up on PATH
    return resolved


def _join(base: str, reference: Any) -> Any:
    if isinstance(reference, str) and reference and not os.path.isabs(reference):
        return os.path.normpath(os.path.join(base, reference))
    return reference


def load_merged_kubeconfig(paths: list[str], explicit: bool) -> MergedKubeconfig:
    """Read and merge the files; missing ones are skipped unless named by --kubeconfig."""
    documents = []
    for path in paths:
        document = load_kubeconfig_file(path)
        if document is None and explicit:
            raise ClusterUnavailable(f'kubeconfig "{path}" not found: check the --kubeconfig path')
        if document is not None:
            documents.append((path, document))
    return merge_kubeconfigs(documents)


# -- choosing the context --------------------------------------------------------------------

class _NoClusterChosen(ClusterUnavailable):
    """kubectl's "empty config": nothing names a cluster, so in-cluster access may stand in."""


@dataclass(frozen=True)
class _Choice:
    context: str | None
    cluster: str | None
    user: str | None
    context_entry: dict
    cluster_entry: dict
    user_entry: dict | None


def choose_context(config: MergedKubeconfig, flags: ClusterFlags, searched: str) -> _Choice:
    """Apply --context/--cluster/--user to the merged config (client-go's DirectClientConfig)."""
    where = f"in the kubeconfig ({searched})"
    context_name = flags.context or config.current_context
    if flags.context and flags.context not in config.contexts:
        raise ClusterUnavailable(f'context "{flags.context}" does not exist {where}: '
                                 "run kubectl config get-contexts to see the contexts")
    if context_name and context_name not in config.contexts:
        raise ClusterUnavailable(f'current context "{context_name}" does not exist {where}: '
                                 "pass --context or run kubectl config use-context")
    if flags.user and flags.user not in config.users:
        raise ClusterUnavailable(f'user "{flags.user}" given by --user does not exist {where}: '
                                 "run kubectl config get-users to see the users")
    if flags.cluster and flags.cluster not in config.clusters:
        raise ClusterUnavailable(f'cluster "{flags.cluster}" given by --cluster does not exist {where}: '
                                 "run kubectl config get-clusters to see the clusters")
    context_entry = config.contexts.get(context_name or "", {})
    cluster_name = flags.cluster or _name(context_entry.get("cluster"))
    if not cluster_name or cluster_name not in config.clusters:
        raise _NoClusterChosen(_no_cluster_message(config, context_name, cluster_name, searched))
    cluster_entry = config.clusters[cluster_name]
    if not cluster_entry.get("server") and not flags.server:
        raise ClusterUnavailable(f'cluster "{cluster_name}" has no server {where}: '
                                 "set one with kubectl config set-cluster --server")
    # A context naming a user that does not exist means anonymous access in kubectl, not an error.
    user_name = flags.user or _name(context_entry.get("user"))
    return _Choice(context=context_name or None, cluster=cluster_name, user=user_name,
                   context_entry=context_entry, cluster_entry=cluster_entry,
                   user_entry=config.users.get(user_name) if user_name else None)


def _name(value) -> str | None:
    """A context's cluster or user reference; anything but a non-empty string names nothing."""
    return value if isinstance(value, str) and value else None


def _no_cluster_message(config: MergedKubeconfig, context: str | None, cluster: str | None, searched: str) -> str:
    if not config.files:
        return f"no kubeconfig found: set KUBECONFIG, pass --kubeconfig, or run inside a pod ({searched})"
    if not context:
        return "no current context is set: pass --context or run kubectl config use-context"
    where = f"in the kubeconfig ({searched})"
    if not cluster:
        return f'context "{context}" names no cluster {where}: fix the context or pass --cluster'
    return f'context "{context}" refers to cluster "{cluster}", which does not exist {where}: fix the context or pass --cluster'


# -- in-cluster ------------------------------------------------------------------------------

def in_cluster_possible(environ: Mapping[str, str], service_account_dir: str) -> bool:
    """client-go's test: service host and port set, and a token file present."""
    return bool(environ.get("KUBERNETES_SERVICE_HOST") and environ.get("KUBERNETES_SERVICE_PORT")
                and os.path.isfile(os.path.join(service_account_dir, "token")))


def in_cluster_namespace(environ: Mapping[str, str], service_account_dir: str) -> str:
    """POD_NAMESPACE, else the service account's namespace file, else "default" (client-go's order)."""
    if environ.get("POD_NAMESPACE"):
        return environ["POD_NAMESPACE"]
    try:
        with open(os.path.join(service_account_dir, "namespace"), encoding="utf-8") as stream:
            return stream.read().strip() or "default"
    except OSError:
        return "default"


def in_cluster_server(environ: Mapping[str, str]) -> str:
    """https://host:port from the service variables, an IPv6 host in brackets (net.JoinHostPort)."""
    host, port = environ["KUBERNETES_SERVICE_HOST"], environ["KUBERNETES_SERVICE_PORT"]
    return f"https://[{host}]:{port}" if ":" in host or "%" in host else f"https://{host}:{port}"


# -- resolve ---------------------------------------------------------------------------------

def resolve_target(flags: ClusterFlags, environ: Mapping[str, str] | None = None, home: str | None = None,
                   service_account_dir: str = SERVICE_ACCOUNT_DIR) -> KubeTarget:
    """The target kubectl would use for these flags and this environment (no network, no plugins run)."""
    environ = dict(os.environ if environ is None else environ)
    timeout = parse_duration(flags.request_timeout) if flags.request_timeout is not None else None
    home = home or home_folder(environ)
    paths = kubeconfig_paths(flags.kubeconfig, environ, home)
    config = load_merged_kubeconfig(paths, explicit=bool(flags.kubeconfig))
    searched = ", ".join(config.files) if config.files else _describe_missing(flags, environ, paths)
    can_use_pod = in_cluster_possible(environ, service_account_dir)
    cluster_flags, user_flags = cluster_overrides(flags), user_overrides(flags)
    flag_fields = set(cluster_flags) | set(user_flags)
    try:
        choice = choose_context(config, flags, searched)
    except _NoClusterChosen:
        if can_use_pod:  # client-go: an empty kubeconfig means the pod's service account, flags applied
            account = {"certificate-authority": os.path.join(service_account_dir, "ca.crt"),
                       "server": in_cluster_server(environ)}
            cluster = merge_cluster(account, cluster_flags)
            user = merge_user({"tokenFile": os.path.join(service_account_dir, "token")}, user_flags)
            return KubeTarget(context=None, cluster=None, user=None, server=str(cluster["server"]).rstrip("/"),
                              namespace=flags.namespace or in_cluster_namespace(environ, service_account_dir),
                              namespace_explicit=bool(flags.namespace), request_timeout=timeout, in_cluster=True,
                              connection=build_connection(cluster, user, who="the in-cluster service account",
                                                          flag_fields=flag_fields, environ=environ),
                              environ=environ)
        if not flags.server:
            raise
        choice = _Choice(context=None, cluster=None, user=flags.user, context_entry={}, cluster_entry={},
                         user_entry=config.users.get(flags.user) if flags.user else None)
    if flags.namespace:
        namespace = flags.namespace
    elif choice.context_entry.get("namespace"):
        namespace = str(choice.context_entry["namespace"])
    else:  # kubectl falls back to the pod's namespace whenever in-cluster access is possible
        namespace = in_cluster_namespace(environ, service_account_dir) if can_use_pod else "default"
    cluster = merge_cluster(choice.cluster_entry, cluster_flags)
    user = merge_user(choice.user_entry, user_flags)
    who = (f'user "{choice.user}"' if choice.user else "the anonymous user") + (
        f' of context "{choice.context}"' if choice.context else "")
    connection = build_connection(cluster, user, who=who, flag_fields=flag_fields, environ=environ)
    return KubeTarget(context=choice.context, cluster=choice.cluster, user=choice.user, server=connection.server,
                      namespace=namespace, namespace_explicit=bool(flags.namespace), request_timeout=timeout,
                      in_cluster=False, connection=connection, environ=environ)


def _describe_missing(flags: ClusterFlags, environ: Mapping[str, str], paths: list[str]) -> str:
    if environ.get("KUBECONFIG") and not flags.kubeconfig:
        return "KUBECONFIG names only missing files: " + ", ".join(paths)
    return f"{paths[0]} does not exist"


# -- exec credential plugins (client-go's behaviour) -----------------------------------------

def exec_cluster_info(cluster: Mapping[str, Any]) -> dict:
    """spec.cluster of KUBERNETES_EXEC_INFO: the cluster as client-go passes it, CA always as data."""
    ca_data = cluster.get("certificate-authority-data")
    if not ca_data and cluster.get("certificate-authority"):
        try:
            with open(cluster["certificate-authority"], "rb") as stream:
                ca_data = base64.b64encode(stream.read()).decode()
        except OSError:
            ca_data = None
    extension = next((item.get("extension") for item in cluster.get("extensions") or []
                      if isinstance(item, dict) and item.get("name") == EXEC_CLUSTER_EXTENSION), None)
    info = {"server": cluster.get("server", ""), "tls-server-name": cluster.get("tls-server-name"),
            "insecure-skip-tls-verify": cluster.get("insecure-skip-tls-verify"),
            "certificate-authority-data": ca_data, "proxy-url": cluster.get("proxy-url"),
            "disable-compression": cluster.get("disable-compression"), "config": extension}
    return {key: value for key, value in info.items() if value or key == "server"}


def run_exec_plugin(exec_config: Mapping[str, Any], *, who: str, cluster: Mapping[str, Any],
                    environ: Mapping[str, str], stdin_is_terminal: bool) -> dict:
    """Run a credential plugin as client-go does and return its ExecCredential status.

    Errors name the plugin and `who`, never its output: that carries the credential. The
    plugin's stderr goes to ours, as with kubectl, so its own explanation is shown.
    """
    command = str(exec_config.get("command") or "")
    label = f'exec credential plugin "{command}" for {who}'
    api_version = exec_config.get("apiVersion")
    if not command:
        raise ClusterUnavailable(f"the exec credential plugin for {who} has no command: fix users[].user.exec in the kubeconfig")
    if api_version not in EXEC_API_VERSIONS:
        raise ClusterUnavailable(f'{label} asks for apiVersion "{api_version}", which kubectl does not support: '
                                 f"use {EXEC_API_VERSIONS[0]}")
    interactive = _exec_interactive(str(exec_config.get("interactiveMode") or "IfAvailable"), stdin_is_terminal, label)
    executable = _find_executable(command, environ)
    if executable is None:
        hint = _clean_install_hint(exec_config.get("installHint"))
        raise ClusterUnavailable(f"{label} was not found: " + (hint or "install it or fix the command in the kubeconfig"))
    spec: dict[str, Any] = {"cluster": exec_cluster_info(cluster)} if exec_config.get("provideClusterInfo") else {}
    spec["interactive"] = interactive
    env = dict(environ)  # __main__ already restored the user's LD_LIBRARY_PATH in a frozen build
    env.update({str(item.get("name")): str(item.get("value", ""))
                for item in exec_config.get("env") or [] if isinstance(item, dict)})
    # Byte for byte what kubectl sets, trailing newline included (Go's json.Encoder).
    env["KUBERNETES_EXEC_INFO"] = json.dumps({"kind": "ExecCredential", "apiVersion": api_version, "spec": spec},
                                             separators=(",", ":")) + "\n"
    argv = [executable, *(str(arg) for arg in exec_config.get("args") or [])]
    import subprocess  # only for kubeconfigs with an exec credential plugin

    try:
        process = subprocess.run(argv, env=env, stdin=None if interactive else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, check=False)
    except OSError as error:
        raise ClusterUnavailable(f"{label} could not be started: {error.strerror}") from None
    if process.returncode < 0:
        raise ClusterUnavailable(f"{label} was killed by signal {-process.returncode}")
    if process.returncode:
        raise ClusterUnavailable(f"{label} failed with exit code {process.returncode}: see its message above")
    return _exec_status(process.stdout, api_version, label)


def _exec_interactive(mode: str, stdin_is_terminal: bool, label: str) -> bool:
    if mode == "Never":
        return False
    if mode == "IfAvailable":
        return stdin_is_terminal
    if mode == "Always":
        if not stdin_is_terminal:
            raise ClusterUnavailable(f"{label} needs a terminal (interactiveMode Always) but standard input is not one")
        return True
    raise ClusterUnavailable(f'{label} has an unknown interactiveMode "{mode}": use Never, IfAvailable or Always')


def _find_executable(command: str, environ: Mapping[str, str]) -> str | None:
    if os.sep in command:  # already absolute: resolved against its kubeconfig during the merge
        return command if os.path.isfile(command) else None
    import shutil

    return shutil.which(command, path=environ.get("PATH", os.defpath))


def _clean_install_hint(hint: Any) -> str:
    """The hint on one line, with control characters shown as U+XXXX, as client-go does for ESC."""
    if not hint:
        return ""
    shown = "".join(c if c.isspace() or not unicodedata.category(c).startswith("C") else f"U+{ord(c):04X}"
                    for c in str(hint))
    return " ".join(shown.split())


def _exec_status(stdout: bytes, api_version: str, label: str) -> dict:
    """Validate the plugin's answer like client-go; messages never quote the output."""
    try:
        answer = json.loads(stdout)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
        raise ClusterUnavailable(f"{label} did not print an ExecCredential: run the plugin yourself to see what it prints")
    if answer.get("apiVersion") != api_version:
        raise ClusterUnavailable(f"{label} answered with another apiVersion than the {api_version} it is configured for")
    status = answer.get("status")
    if not isinstance(status, dict):
        raise ClusterUnavailable(f"{label} returned no status")
    has_certificate, has_key = bool(status.get("clientCertificateData")), bool(status.get("clientKeyData"))
    if not (status.get("token") or has_certificate or has_key):
        raise ClusterUnavailable(f"{label} returned neither a token nor a client certificate")
    if has_certificate != has_key:
        raise ClusterUnavailable(f"{label} returned a client certificate or key without the other")
    return status


def stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):
        return False
