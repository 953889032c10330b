"""One connection description from a kubeconfig's cluster and user plus kubectl's flags.

The rules are client-go clientcmd's (DirectClientConfig with ConfigOverrides): a flag replaces
the matching kubeconfig field and nothing else (`--as` keeps `as-groups`), `--insecure-skip-tls-verify`
or `--certificate-authority` drop the kubeconfig's CA, `--server` drops its `tls-server-name`,
and the same combinations are refused. Pure apart from checking that named files are readable,
which kubectl also does before its first request.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import BadInput, ClusterUnavailable, WaypointError
from .proxy import environment_proxy, normalise_proxy_url

# What kubectl tells users of the auth providers it no longer has (client-go's removal messages).
REMOVED_AUTH_PROVIDERS = {
    "gcp": 'install the "gke-gcloud-auth-plugin" credential plugin '
           "(gcloud components install gke-gcloud-auth-plugin) and run gcloud container clusters get-credentials again",
    "azure": 'install the "kubelogin" credential plugin (https://github.com/Azure/kubelogin) '
             "and run kubelogin convert-kubeconfig",
}


@dataclass(frozen=True)
class TLSSettings:
    insecure: bool = False
    ca_file: str | None = None
    ca_data: bytes | None = None  # PEM
    cert_file: str | None = None
    cert_data: bytes | None = None
    key_file: str | None = None
    key_data: bytes | None = None
    server_name: str | None = None  # SNI and the name the certificate must carry


@dataclass(frozen=True)
class Impersonation:
    user: str | None = None
    groups: tuple[str, ...] = ()
    uid: str | None = None
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def headers(self) -> dict[str, list[str]]:
        """Impersonate-* headers, each possibly repeated (client-go's ImpersonatingRoundTripper)."""
        if not self.user:
            return {}
        headers: dict[str, list[str]] = {"Impersonate-User": [self.user]}
        if self.uid:
            headers["Impersonate-Uid"] = [self.uid]
        if self.groups:
            headers["Impersonate-Group"] = list(self.groups)
        for key, values in self.extra:
            headers["Impersonate-Extra-" + _escape_extra_key(key)] = list(values)
        return headers


def _escape_extra_key(key: str) -> str:
    """client-go percent-encodes what an HTTP header name cannot carry."""
    allowed = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return "".join(ch if ch in allowed and ch != "%" else "".join(f"%{b:02X}" for b in ch.encode()) for ch in key)


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    token_file: str | None = None  # re-read when it changes; `token` stands in while it is missing
    username: str | None = None
    password: str | None = None
    exec_config: Mapping[str, Any] | None = None
    oidc_id_token: str | None = None


@dataclass(frozen=True)
class Connection:
    """Everything needed to reach the API server as kubectl would (no secret in repr)."""

    server: str
    who: str  # for messages: 'user "x" of context "y"'
    tls: TLSSettings = field(repr=False)
    credentials: Credentials = field(repr=False)
    impersonation: Impersonation = Impersonation()
    proxy: str | None = field(default=None, repr=False)  # may carry a password
    disable_compression: bool = False
    cluster_entry: Mapping[str, Any] = field(default_factory=dict, repr=False)  # for exec plugins


def _data(entry: Mapping[str, Any], key: str, who: str) -> bytes | None:
    value = entry.get(key)
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=False)
    except (binascii.Error, ValueError):
        raise ClusterUnavailable(f"{key} of {who} is not valid base64: fix the kubeconfig") from None


def _same(value):
    return value


# kubectl's flags as (ClusterFlags attribute, the kubeconfig field it overrides, how the value is taken).
_CLUSTER_FLAGS = (("server", "server", _same), ("certificate_authority", "certificate-authority", os.path.abspath),
                  ("insecure_skip_tls_verify", "insecure-skip-tls-verify", bool),
                  ("tls_server_name", "tls-server-name", _same), ("disable_compression", "disable-compression", bool))
_USER_FLAGS = (("token", "token", _same), ("client_certificate", "client-certificate", os.path.abspath),
               ("client_key", "client-key", os.path.abspath), ("impersonate", "as", _same),
               ("impersonate_groups", "as-groups", list), ("impersonate_uid", "as-uid", _same))


def _overrides(flags, table) -> dict[str, Any]:
    """The kubeconfig fields the given flags set (a flag left out overrides nothing)."""
    return {key: take(getattr(flags, attribute)) for attribute, key, take in table if getattr(flags, attribute)}


def cluster_overrides(flags) -> dict[str, Any]:
    return _overrides(flags, _CLUSTER_FLAGS)


def user_overrides(flags) -> dict[str, Any]:
    return _overrides(flags, _USER_FLAGS)


def merge_cluster(entry: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """clientcmd's getCluster + ClientConfig override rules."""
    merged = {**entry, **overrides}
    if overrides.get("insecure-skip-tls-verify") or overrides.get("certificate-authority"):
        merged["insecure-skip-tls-verify"] = bool(overrides.get("insecure-skip-tls-verify"))
        merged.pop("certificate-authority-data", None)
        if "certificate-authority" in overrides:
            merged["certificate-authority"] = overrides["certificate-authority"]
        else:
            merged.pop("certificate-authority", None)
    if overrides.get("server") or overrides.get("tls-server-name"):
        merged["tls-server-name"] = overrides.get("tls-server-name")
    return merged


def merge_user(entry: Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    return {**(entry or {}), **overrides}


def build_connection(cluster: Mapping[str, Any], user: Mapping[str, Any], *, who: str, flag_fields: set[str],
                     environ: Mapping[str, str]) -> Connection:
    """Validate the merged entries as kubectl does and describe the connection.

    `flag_fields` names the fields that came from flags: a problem with one of those is bad input
    (exit 2), a problem in the kubeconfig means the cluster cannot be used (exit 3).
    """

    def fail(message: str, *fields: str) -> WaypointError:
        return BadInput(message) if flag_fields.intersection(fields) else ClusterUnavailable(message)

    server = str(cluster.get("server") or "").rstrip("/")
    if cluster.get("insecure-skip-tls-verify") and (cluster.get("certificate-authority")
                                                     or cluster.get("certificate-authority-data")):
        if {"insecure-skip-tls-verify", "certificate-authority"} <= flag_fields:
            raise BadInput("--insecure-skip-tls-verify and --certificate-authority cannot be used together "
                           "(kubectl refuses them too): drop one")
        raise ClusterUnavailable(f"the cluster of {who} sets both insecure-skip-tls-verify and a certificate "
                                 "authority, which kubectl refuses too: remove one of them")
    impersonation = _impersonation(user, who, fail)
    has_cert = bool(user.get("client-certificate") or user.get("client-certificate-data"))
    has_key = bool(user.get("client-key") or user.get("client-key-data"))
    if has_cert != has_key:
        missing = "client-key" if has_cert else "client-certificate"
        raise fail(f"{who} has a client {'certificate' if has_cert else 'key'} but no {missing}: "
                   f"pass --{missing} or set {missing} in the kubeconfig", "client-certificate", "client-key")
    if user.get("token") and (user.get("username") or user.get("password")):
        raise fail(f"{who} has both a token and a username/password, which kubectl refuses: keep one", "token")
    for key, flag in (("certificate-authority", "--certificate-authority"),
                      ("client-certificate", "--client-certificate"), ("client-key", "--client-key")):
        source = cluster if key == "certificate-authority" else user
        path = source.get(key)
        if path and not source.get(key + "-data") and not _readable(path):
            named_by = flag if key in flag_fields else f"{key} in the kubeconfig"
            raise fail(f'the file "{path}" given by {named_by} for {who} cannot be read: check the path', key)
    token_file = user.get("tokenFile") or None
    if token_file and not user.get("token") and not _readable(token_file):
        raise ClusterUnavailable(f'the token file "{token_file}" of {who} cannot be read: check the path '
                                 "and its permissions")
    credentials = Credentials(
        token=str(user["token"]) if user.get("token") else None, token_file=token_file,
        username=user.get("username") or None, password=user.get("password") or None,
        exec_config=_exec_config(user, has_cert, who), oidc_id_token=_auth_provider_token(user, who))
    tls = TLSSettings(
        insecure=bool(cluster.get("insecure-skip-tls-verify")), ca_file=cluster.get("certificate-authority") or None,
        ca_data=_data(cluster, "certificate-authority-data", who),
        cert_file=user.get("client-certificate") or None, cert_data=_data(user, "client-certificate-data", who),
        key_file=user.get("client-key") or None, key_data=_data(user, "client-key-data", who),
        server_name=cluster.get("tls-server-name") or None)
    proxy_url = cluster.get("proxy-url")
    try:
        proxy = (normalise_proxy_url(str(proxy_url), f"proxy-url of {who}") if proxy_url
                 else environment_proxy(server, environ))
    except BadInput as error:  # a kubeconfig problem is the cluster's, not the command line's
        raise (ClusterUnavailable(error.message) if proxy_url else error) from None
    return Connection(server=server, who=who, tls=tls, credentials=credentials, impersonation=impersonation,
                      proxy=proxy, disable_compression=bool(cluster.get("disable-compression")),
                      cluster_entry=dict(cluster))


def _readable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.R_OK)


def _impersonation(user: Mapping[str, Any], who: str, fail) -> Impersonation:
    groups = tuple(str(group) for group in user.get("as-groups") or [])
    extra_entry = user.get("as-user-extra") or {}
    extra = tuple(sorted((str(key), tuple(str(v) for v in (values if isinstance(values, list) else [values])))
                         for key, values in extra_entry.items())) if isinstance(extra_entry, dict) else ()
    uid = str(user["as-uid"]) if user.get("as-uid") else None
    if not user.get("as") and (groups or uid or extra):
        raise fail(f"requesting uid, groups or user-extra for {who} without impersonating a user: "
                   "add --as USER (or as: in the kubeconfig)", "as-groups", "as-uid")
    return Impersonation(user=str(user["as"]) if user.get("as") else None, groups=groups, uid=uid, extra=extra)


def _exec_config(user: Mapping[str, Any], has_cert: bool, who: str) -> Mapping[str, Any] | None:
    exec_config = user.get("exec")
    if not exec_config:
        return None
    if not isinstance(exec_config, dict):
        raise ClusterUnavailable(f"the exec entry of {who} is not a mapping: fix the kubeconfig")
    if user.get("auth-provider"):
        raise ClusterUnavailable(f"{who} has both an auth-provider and an exec plugin, which kubectl refuses: keep one")
    if has_cert or user.get("username") or user.get("password"):
        return None  # client-go skips the plugin when the kubeconfig already identifies the user
    return exec_config


def _auth_provider_token(user: Mapping[str, Any], who: str) -> str | None:
    """kubectl still has the oidc provider (its id-token is sent); gcp and azure were removed."""
    provider = user.get("auth-provider")
    if not provider:
        return None
    name = str(provider.get("name") if isinstance(provider, dict) else "")
    if name in REMOVED_AUTH_PROVIDERS:
        raise ClusterUnavailable(f'the "{name}" auth-provider of {who} was removed from kubectl: '
                                 + REMOVED_AUTH_PROVIDERS[name])
    if name == "oidc":
        config = provider.get("config") or {}
        for key in ("idp-issuer-url", "client-id"):
            if not config.get(key):
                raise ClusterUnavailable(f"the oidc auth-provider of {who} has no {key}: fix the kubeconfig")
        token = str(config.get("id-token") or "")
        if _jwt_expired(token):  # kubectl would refresh it at the issuer and write it back
            raise ClusterUnavailable(f"the oidc id-token of {who} is missing or expired: run any kubectl command "
                                     "once to refresh it, or switch to the kubelogin credential plugin")
        return token
    raise ClusterUnavailable(f'the auth-provider "{name}" of {who} is not one kubectl knows: '
                             "use an exec credential plugin instead")


def _jwt_expired(token: str) -> bool:
    """client-go's idTokenExpired: no token, a token that is not a JWT, or one past its `exp`."""
    import json
    import time

    parts = token.split(".")
    if len(parts) != 3:
        return True
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return float(claims["exp"]) <= time.time()
    except (ValueError, KeyError, TypeError, binascii.Error):
        return True
