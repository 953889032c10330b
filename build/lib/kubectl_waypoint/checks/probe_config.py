"""`verify --probe-config FILE`: routing and authorization probes described by the user.

Automatic derivation guesses a URL and a client; where it cannot (the backends' answers do not
name them, a path must be specific, a client is outside the namespace), the file says it:

    routes:
      - route: reviews                          # HTTPRoute name in the verified namespace
        url: http://reviews.bookinfo:9080/reviews/0
        client: bookinfo/deploy/productpage-v1  # [NAMESPACE/]pod/NAME, deploy/NAME or a pod name
        container: productpage
        match: 'reviews-v[0-9]'                 # regex naming the backend (first group if any)
        count: 500
        headers: ["x-user: tester"]
    authorization:
      - policy: productpage-waypoint            # AuthorizationPolicy name in the namespace
        url: http://productpage.bookinfo:9080/productpage
        allowedClient: curl/deploy/curl
        deniedClient: bookinfo/deploy/ratings-v1
        method: GET                             # a method the policy allows
        deniedMethod: DELETE                    # a method it does not
        count: 50
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BadInput

ROUTE_KEYS = {"route": str, "url": str, "client": str, "container": str, "match": str, "count": int,
              "headers": list}
POLICY_KEYS = {"policy": str, "url": str, "allowedClient": str, "deniedClient": str, "container": str,
               "method": str, "deniedMethod": str, "count": int, "headers": list}


@dataclass(frozen=True)
class RouteProbe:
    route: str
    url: str | None = None
    client: str | None = None
    container: str | None = None
    match: str | None = None
    count: int | None = None
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyProbe:
    policy: str
    url: str | None = None
    allowed_client: str | None = None
    denied_client: str | None = None
    container: str | None = None
    method: str | None = None
    denied_method: str | None = None
    count: int | None = None
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeConfig:
    routes: dict[str, RouteProbe] = field(default_factory=dict)
    policies: dict[str, PolicyProbe] = field(default_factory=dict)


def load_probe_config(path: str) -> ProbeConfig:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as exc:
        raise BadInput(f"cannot read --probe-config {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise BadInput(f"--probe-config {path} is not valid YAML{where}; see the README for its format") from exc
    return parse_probe_config(doc, path)


def parse_probe_config(doc, path: str = "--probe-config") -> ProbeConfig:
    if doc is None:
        return ProbeConfig()
    if not isinstance(doc, dict):
        raise BadInput(f"{path} must be a mapping with 'routes' and/or 'authorization' lists")
    unknown = set(doc) - {"routes", "authorization"}
    if unknown:
        raise BadInput(f"{path}: unknown key {sorted(unknown)[0]!r}; expected 'routes' and/or 'authorization'")
    routes = [_entry(e, ROUTE_KEYS, "route", f"{path}: routes[{i}]") for i, e in enumerate(_list(doc, "routes", path))]
    policies = [_entry(e, POLICY_KEYS, "policy", f"{path}: authorization[{i}]")
                for i, e in enumerate(_list(doc, "authorization", path))]
    return ProbeConfig(
        routes={e["route"]: RouteProbe(
            e["route"], e.get("url"), e.get("client"), e.get("container"), e.get("match"), e.get("count"),
            tuple(e.get("headers") or ())) for e in routes},
        policies={e["policy"]: PolicyProbe(
            e["policy"], e.get("url"), e.get("allowedClient"), e.get("deniedClient"), e.get("container"),
            e.get("method"), e.get("deniedMethod"), e.get("count"), tuple(e.get("headers") or ())) for e in policies},
    )


def _list(doc: dict, key: str, path: str) -> list:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise BadInput(f"{path}: '{key}' must be a list")
    return value


def _entry(entry, keys: dict[str, type], required: str, where: str) -> dict:
    if not isinstance(entry, dict):
        raise BadInput(f"{where} must be a mapping")
    for key, value in entry.items():
        if key not in keys:
            raise BadInput(f"{where}: unknown key {key!r}; allowed: {', '.join(keys)}")
        wanted = keys[key]
        if not isinstance(value, wanted) or isinstance(value, bool):
            raise BadInput(f"{where}: {key} must be {'a number' if wanted is int else 'a list' if wanted is list else 'text'}")
        if wanted is int and value < 1:
            raise BadInput(f"{where}: {key} must be at least 1")
        if wanted is list and not all(isinstance(v, str) for v in value):
            raise BadInput(f"{where}: {key} must be a list of 'Name: value' strings")
    if not entry.get(required):
        raise BadInput(f"{where}: '{required}' is required")
    return entry
