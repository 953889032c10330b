"""What shell completion read from the kubeconfig and the cluster, kept briefly in kubectl's cache directory.

People press TAB several times while typing one command line; each press starts a new process,
and reading the namespaces again means the `kubernetes` client, the kubeconfig's YAML and an
HTTPS request. A TAB within TTL_SECONDS of the last one for the same cluster and identity is
answered from a file instead (completion_fast.py does it without importing click or YAML).

Nothing here needs more than the standard library, so the fast path stays fast. An entry's file
name is a SHA-256 over everything that chooses the cluster and the identity (the kubeconfig
files' paths and contents, the connection flags, the environment that changes their meaning):
a token, on the line or in a kubeconfig, only ever enters a hash, never a file. Files are 0600
in a 0700 folder, written whole (temporary file, then rename), and anything that is not exactly
one of our entries, owned by this user and private, is ignored.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable, Mapping

from .kubectl_files import home_folder, kubeconfig_paths

# Long enough to cover the TABs of one command line being typed (seconds apart), short enough that
# a namespace, route or pod created meanwhile shows up within half a minute; kubectl itself never
# caches these lists. Age counts from the moment the request was sent.
TTL_SECONDS = 30.0
PRUNE_AFTER_SECONDS = 24 * 3600.0  # entries nobody asked for since: removed when the next one is written
MAX_ENTRY_BYTES = 8 << 20
FORMAT = "kubectl-waypoint completion 1"
FOLDER = "kubectl-waypoint-completion"

# Lists that are a pure function of the kubeconfig files' contents: exact whatever their age.
KUBECONFIG_KINDS = frozenset({"contexts", "clusters", "users"})

# The click parameters (cli.cluster_options) that choose the cluster, the identity or the namespace,
# and --request-timeout, whose bad value is an error the cache must not hide ("0" or "": the default).
CONNECTION_PARAMS = ("kubeconfig", "context", "cluster", "user", "namespace", "server", "token", "impersonate",
                     "impersonate_groups", "impersonate_uid", "certificate_authority", "client_certificate",
                     "client_key", "insecure_skip_tls_verify", "tls_server_name", "request_timeout")
_DEFAULTS = {"request_timeout": ("0", "")}
_PATH_PARAMS = frozenset({"kubeconfig", "certificate_authority", "client_certificate", "client_key"})
# What else changes the target: which files are read, and in-cluster access (kube/config.py).
CLUSTER_ENVIRONMENT = ("KUBECONFIG", "HOME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "POD_NAMESPACE")

# POSIX: entries and their folder must be this user's and private. Windows has neither owners nor
# modes here; its profile folder is private already.
_OWNER = os.geteuid() if hasattr(os, "geteuid") else None
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class Miss(Exception):
    """The cache cannot answer: the caller asks the kubeconfig or the cluster (or gives up)."""


def cache_folder(cache_dir_flag: str | None, environ: Mapping[str, str]) -> str:
    """Our folder inside kubectl's cache directory, chosen by kubectl's rule.

    kubectl 1.32 (k8s.io/cli-runtime pkg/genericclioptions/config_flags.go, getDefaultCacheDir and
    toDiscoveryClient): a non-empty --cache-dir, else $KUBECACHEDIR when set and non-empty, else
    $HOME/.kube/cache (client-go's homedir.HomeDir()).
    """
    base = cache_dir_flag or environ.get("KUBECACHEDIR") or os.path.join(home_folder(environ), ".kube", "cache")
    return os.path.join(os.path.abspath(base), FOLDER)


def _digest(parts: list[str]) -> str:
    # Command-line words and environment values cannot hold NUL, so joining on it is unambiguous.
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _file_digest(path: str) -> str:
    """The content's hash; OSError other than a missing file leaves the cache out of it."""
    try:
        with open(path, "rb") as stream:
            return hashlib.sha256(stream.read()).hexdigest()
    except FileNotFoundError:
        return "missing"


def kubeconfig_identity(params: Mapping[str, object], environ: Mapping[str, str]) -> str:
    """What the merged kubeconfig depends on: the files kubectl reads, by path and content."""
    parts = [FORMAT]
    for path in kubeconfig_paths(params.get("kubeconfig"), environ):  # type: ignore[arg-type]
        path = os.path.abspath(path)
        parts += [path, _file_digest(path)]
    return _digest(parts)


def cluster_identity(params: Mapping[str, object], environ: Mapping[str, str]) -> str:
    """What chooses the cluster, the identity and the namespace: the kubeconfig, flags and environment.

    Parameters are as click parses them (absent: None, False or an empty tuple); relative paths are
    made absolute, since the same words in another folder name other files.
    """
    parts = [kubeconfig_identity(params, environ)]
    for name in CONNECTION_PARAMS:
        value = params.get(name)
        if value is None or value is False or value == () or value in _DEFAULTS.get(name, ()):
            continue
        if isinstance(value, tuple):
            parts += [name, str(len(value)), *value]
        else:
            parts += [name, os.path.abspath(value) if name in _PATH_PARAMS and value else str(value)]
    for variable in CLUSTER_ENVIRONMENT:
        if variable in environ:
            parts += [variable, environ[variable]]
    return _digest(parts)


def entry_key(identity: str, kind: str, namespace: str | None) -> str:
    """One list: its kind, and the namespace typed (None: the target's own namespace)."""
    return _digest([identity, kind, "" if namespace is None else "=" + namespace])


# -- the entries ------------------------------------------------------------------------------------

def read_entry(folder: str, key: str, now: float, max_age: float | None) -> list[str] | None:
    """The names stored under `key`, or None when there is no fresh, intact entry of ours."""
    try:
        fd = os.open(os.path.join(folder, key), os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or not _ours(info) or info.st_size > MAX_ENTRY_BYTES:
            return None
        if max_age is not None and not -1.0 <= now - info.st_mtime <= max_age:
            return None  # stale, or from the future (the clock went back): ask again
        data = os.read(fd, info.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        lines = data.decode("utf-8", "surrogatepass").split("\n")
    except UnicodeDecodeError:
        return None
    if len(lines) < 2 or lines[0] != f"{FORMAT} {key}" or lines[-1] != "":
        return None  # someone else's file, or one cut short
    return lines[1:-1]


def write_entry(folder: str, key: str, names: list[str], fetched_at: float) -> None:
    """Store `names` as of `fetched_at` (the file's mtime); any failure only means no cache."""
    if any("\n" in name or "\r" in name for name in names):
        return  # one name a line: such a name cannot be stored (nor completed by a shell)
    text = "".join(f"{line}\n" for line in (f"{FORMAT} {key}", *names))
    temporary = os.path.join(folder, f".{key}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        if not _private_folder(folder):
            return
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(text.encode("utf-8", "surrogatepass"))
            os.utime(temporary, (fetched_at, fetched_at))
            os.replace(temporary, os.path.join(folder, key))
        except BaseException:
            _remove(temporary)
            raise
        _prune(folder, time.time())
    except (OSError, UnicodeEncodeError):
        return


def _private_folder(folder: str) -> bool:
    """Create the folder 0700 (kubectl's cache directory above it as needed); refuse one not ours."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or (_OWNER is not None and info.st_uid != _OWNER):
        return False
    if _OWNER is not None and info.st_mode & 0o077:
        os.chmod(folder, 0o700)
    return True


def _ours(info: os.stat_result) -> bool:
    return _OWNER is None or (info.st_uid == _OWNER and not info.st_mode & 0o077)


def _prune(folder: str, now: float) -> None:
    for entry in os.scandir(folder):
        ours = len(entry.name) == 64 or (entry.name.startswith(".") and entry.name.endswith(".tmp"))
        if ours and entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime > PRUNE_AFTER_SECONDS:
            _remove(entry.path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# -- reading through the cache --------------------------------------------------------------------

def names_lookup(params: Mapping[str, object], environ: Mapping[str, str],
                 fetch: Callable[[str, str | None], list] | None = None,
                 clock: Callable[[], float] = time.time) -> Callable[[str, str | None], list[str]]:
    """lookup(kind, namespace) -> names: from the cache when fresh, else from `fetch` (then stored).

    Without `fetch` a miss raises Miss. Kinds: namespaces, httproutes, pods, deployments (from the
    cluster, fresh for TTL_SECONDS), contexts, clusters, users (from the kubeconfig, keyed by its
    contents). `namespace` None means the target's own namespace.
    """
    folder = cache_folder(params.get("cache_dir"), environ)  # type: ignore[arg-type]

    def lookup(kind: str, namespace: str | None) -> list[str]:
        from_kubeconfig = kind in KUBECONFIG_KINDS
        try:
            identity = (kubeconfig_identity if from_kubeconfig else cluster_identity)(params, environ)
        except OSError:  # a kubeconfig that cannot be read: the full path says why
            identity = None
        key = entry_key(identity, kind, namespace) if identity else None
        names = read_entry(folder, key, clock(), None if from_kubeconfig else TTL_SECONDS) if key else None
        if names is not None:
            return names
        if fetch is None:
            raise Miss(kind)
        fetched_at = clock()
        names = [str(name) for name in fetch(kind, namespace)]
        if key:
            write_entry(folder, key, names, fetched_at)
        return names

    return lookup
