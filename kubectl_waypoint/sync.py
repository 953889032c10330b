"""istiod's view of each proxy's xDS sync, read from istiod or from captured istioctl output.

Pure logic, no I/O. Two sources reach this module: the JSON istiod serves at `/debug/syncz`
(read by `parse_syncz`) and a file holding `istioctl proxy-status` output in any of its shapes
(read by `parse_proxy_status`). Both become `ProxySync` records, which `judge_waypoint_sync` turns
into findings for the `verify` command, following upgrade-verification-procedure.txt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import yaml

from .envoystats import SERVER_STATES, ProxyXds
from kubectl_waypoint.errors import BadInput
from kubectl_waypoint.versions import IstioVersion, judge_skew, parse_version

# Type URLs and short names as istio/istio pilot/pkg/xds/v3 GetShortType spells them.
_SHORT_NAMES = {
    "type.googleapis.com/envoy.config.cluster.v3.Cluster": "CDS",
    "type.googleapis.com/envoy.config.listener.v3.Listener": "LDS",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment": "EDS",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration": "RDS",
    "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig": "ECDS",
    "type.googleapis.com/istio.workload.Address": "WDS",
    "type.googleapis.com/istio.workload.Workload": "WDS",
    "type.googleapis.com/istio.security.Authorization": "WADS",
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret": "SDS",
    "type.googleapis.com/istio.networking.nds.v1.NameTable": "NDS",
    "type.googleapis.com/istio.mesh.v1alpha1.ProxyConfig": "PCDS",
}
# istioctl's writer lists these first, in this order, then every other type alphabetically.
CORE_TYPE_ORDER = ("CDS", "LDS", "EDS", "RDS", "ECDS", "WDS", "WADS")

SYNCED, STALE, NOT_SENT, IGNORED, ERROR = "SYNCED", "STALE", "NOT SENT", "IGNORED", "ERROR"
# States that mean the proxy never asked for, or was never sent, a type.
_ABSENT_STATES = (NOT_SENT, IGNORED)
# A waypoint without clusters or listeners cannot carry a single request.
_WAYPOINT_REQUIRED_TYPES = ("CDS", "LDS")

_CLIENT_CONFIG_TYPE = "type.googleapis.com/envoy.service.status.v3.ClientConfig"


@dataclass(frozen=True)
class ProxySync:
    """One proxy's connection to istiod and the sync state of each xDS type it uses."""

    proxy: str  # "<pod>.<namespace>" as istiod names it
    pod: str
    namespace: str  # "" when the proxy id carries none
    cluster: str | None
    istiod: str | None  # the istiod pod the proxy is connected to
    version: str | None  # the proxy's own ISTIO_VERSION, not istiod's
    proxy_type: str | None  # "waypoint", "ztunnel", "sidecar", "router" when istiod says
    types: dict[str, str]  # short type name -> SYNCED | STALE | NOT SENT | IGNORED | ERROR
    subscribed: tuple[str, ...]  # in CORE_TYPE_ORDER, then alphabetical
    errors: tuple[str, ...]  # "<type>: <lastError>" for each type the proxy rejected
    istiod_version: str | None = None  # istiod's own, from proxy-status JSON's controlPlane.identifier


def short_type_name(type_url: str) -> str:
    """CDS, LDS, WDS... for a known xDS type URL; the URL itself for any other type."""
    return _SHORT_NAMES.get(type_url, type_url)


def _in_core_order(names: Iterable[str]) -> tuple[str, ...]:
    def key(name: str) -> tuple[int, str]:
        rank = CORE_TYPE_ORDER.index(name) if name in CORE_TYPE_ORDER else len(CORE_TYPE_ORDER)
        return (rank, name)

    return tuple(sorted(set(names), key=key))


def _record(
    proxy: str,
    *,
    cluster: str | None,
    istiod: str | None,
    version: str | None,
    proxy_type: str | None,
    types: Mapping[str, str],
    subscribed: Iterable[str],
    errors: Iterable[str] = (),
    namespace_hint: str = "",
    istiod_version: str | None = None,
) -> ProxySync:
    # Namespaces never hold a dot but pod names may, so the namespace follows the last one.
    pod, dot, namespace = proxy.rpartition(".")
    if not dot:
        pod, namespace = proxy, namespace_hint
    return ProxySync(
        proxy=proxy,
        pod=pod,
        namespace=namespace,
        cluster=cluster or None,
        istiod=istiod or None,
        version=version or None,
        proxy_type=proxy_type or None,
        types={name: types[name] for name in _in_core_order(types)},
        subscribed=_in_core_order(subscribed),
        errors=tuple(errors),
        istiod_version=istiod_version or None,
    )


def _nonce_state(sent: str, acked: str) -> str:
    """istioctl's rule: nothing sent is NOT SENT, the last nonce sent acknowledged is SYNCED."""
    if not sent:
        return NOT_SENT
    return SYNCED if sent == acked else STALE


def _text(mapping: Mapping, key: str, where: str) -> str:
    value = mapping.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadInput(f"{where}: field {key!r} should be text but is {type(value).__name__}.")
    return value


def _mapping(value: object, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise BadInput(f"{where} should be an object but is {type(value).__name__}.")
    return value


# --- istiod /debug/syncz ---------------------------------------------------------------------

# The per-type fields every syncz version carries (SyncStatus in istio/istio
# pilot/pkg/xds/debug.go): "<prefix>_sent" and "<prefix>_acked" hold the last nonces.
_LEGACY_TYPE_FIELDS = (
    ("CDS", "cluster"),
    ("LDS", "listener"),
    ("EDS", "endpoint"),
    ("RDS", "route"),
    ("ECDS", "extensionconfig"),
)


class DebugEndpointOff(BadInput):
    """istiod answers its debug paths with `404 page not found`: ENABLE_DEBUG_ON_HTTP=false."""


# Go's http.NotFound body: pilot/pkg/xds/debug.go registers /debug/* on the monitoring port only
# when ENABLE_DEBUG_ON_HTTP is true, and `pilot-discovery request` prints a 404's body, exit 0.
NOT_FOUND_BODY = "404 page not found"


def _unexpected_text(payload: str | bytes, source: str) -> BadInput | None:
    """A clear error for the answers that are not JSON at all, before trying to decode them."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    body = text.strip()
    if body == NOT_FOUND_BODY:
        return DebugEndpointOff(
            f"{source} is {NOT_FOUND_BODY!r}: istiod's debug endpoint is off (ENABLE_DEBUG_ON_HTTP=false)."
        )
    if body[:1] == "<":
        return BadInput(f"{source} is an HTML page, not JSON; check that the pod runs istiod.")
    if not body:
        return BadInput(f"{source} is empty; check that the pod runs istiod.")
    return None


def parse_syncz(payload: str | bytes, istiod_pod: str) -> list[ProxySync]:
    """Proxies connected to one istiod, from the JSON its `/debug/syncz` returns."""
    source = f"The /debug/syncz answer of istiod pod {istiod_pod}"
    unexpected = _unexpected_text(payload, source)
    if unexpected is not None:
        raise unexpected
    try:
        entries = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise BadInput(
            f"{source} is not JSON ({_reason(exc)}); check that the pod runs istiod."
        ) from None
    if not isinstance(entries, list):
        raise BadInput(f"{source} should be a list of proxies but is {type(entries).__name__}.")
    return [_syncz_entry(entry, f"{source}, entry {index}", istiod_pod)
            for index, entry in enumerate(entries)]


def _syncz_entry(entry: object, where: str, istiod_pod: str) -> ProxySync:
    entry = _mapping(entry, where)
    proxy = _text(entry, "proxy", where)
    if not proxy:
        raise BadInput(f"{where} names no proxy.")
    # Recent istiod (SyncStatus.Resources, map of type URL -> ResourceStatus{sent, acked,
    # sentTime, lastError} in pilot/pkg/xds/debug.go) lists every type the proxy watches.
    # The map is omitted when empty, and older istiod never sends it: then only the legacy
    # nonce fields are left, and a type counts as subscribed once anything was sent.
    resources = entry.get("resources")
    types: dict[str, str] = {}
    errors: list[str] = []
    if resources:
        for type_url, status in _mapping(resources, f"{where}, resources").items():
            status = _mapping(status, f"{where}, resources[{type_url!r}]")
            name = short_type_name(type_url)
            state = _nonce_state(_text(status, "sent", where), _text(status, "acked", where))
            last_error = _text(status, "lastError", where)
            if last_error:
                state = ERROR
                errors.append(f"{name}: {last_error}")
            types[name] = state
        subscribed = list(types)
    else:
        for name, prefix in _LEGACY_TYPE_FIELDS:
            types[name] = _nonce_state(
                _text(entry, f"{prefix}_sent", where), _text(entry, f"{prefix}_acked", where)
            )
        subscribed = [name for name, state in types.items() if state != NOT_SENT]
    # istio_version is the proxy's own ISTIO_VERSION; proxy_version only ever came from 1.1-era
    # pilots, which istioctl shows as a fallback.
    version = _text(entry, "istio_version", where) or _text(entry, "proxy_version", where)
    return _record(
        proxy,
        cluster=_text(entry, "cluster_id", where),
        istiod=istiod_pod,
        version=version,
        proxy_type=_text(entry, "proxy_type", where),
        types=types,
        subscribed=subscribed,
        errors=errors,
    )


def parse_istiod_version(payload: str | bytes, istiod_pod: str) -> str:
    """istiod's own version from its `/version`: `<version>-<git revision>-<build status>`
    (version.Info.String() in pkg/version/version.go; the version itself may hold dashes)."""
    source = f"The /version answer of istiod pod {istiod_pod}"
    unexpected = _unexpected_text(payload, source)
    if unexpected is not None:
        raise unexpected
    text = (payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload).strip()
    parts = text.rsplit("-", 2)
    if len(parts) != 3 or "\n" in text or parse_version(parts[0]) is None:
        shown = text if len(text) <= 60 else text[:60] + "..."
        raise BadInput(f"{source} ({shown!r}) is not <version>-<revision>-<status>.")
    return parts[0]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split("\n")[0] or type(exc).__name__


# --- istioctl proxy-status output ------------------------------------------------------------

_STATE_CELL = re.compile(r"(SYNCED|STALE|NOT SENT|NOT_SENT|IGNORED|ERROR)(?: \(.*\))?")
_SUBSCRIBED_CELL = re.compile(r"([0-9]{1,4})(?: \(([^()]*)\))?")
_HEADER_CELL = re.compile(r"\S+(?: \S+)*")  # header names may hold one space: SUBSCRIBED TYPES
_TYPE_COLUMN = re.compile(r"[A-Z]{2,5}|type\.googleapis\.com/\S+")
_FIXED_COLUMNS = ("NAME", "CLUSTER", "ISTIOD", "VERSION", "SUBSCRIBED TYPES")
# `istioctl proxy-status | grep waypoint` keeps no header: only the 1.27+ row says what it holds.
_HEADERLESS_ROW = re.compile(
    r"(?P<name>\S+) {2,}(?P<cluster>\S+) {2,}(?P<istiod>\S+) {2,}(?P<version>\S+)"
    r" {2,}(?P<subscribed>[0-9]{1,4}(?: \([^()]*\))?)"
)
_TABULAR = re.compile(r"\S {2,}\S")
# istioctl writes a DiscoveryResponse's keys in alphabetical order; a list when several istiods.
_YAML_START = re.compile(r"---|%YAML|- |(?:controlPlane|resources|typeUrl|versionInfo):(?:\s|$)")


def parse_proxy_status(text: str, source: str = "<input>") -> list[ProxySync]:
    """Proxies from captured `istioctl proxy-status` output: any table format, JSON or YAML."""
    lines = text.lstrip("\ufeff").splitlines()
    numbered = [(number, line.rstrip()) for number, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise BadInput(f"{source} is empty; capture the output of `istioctl proxy-status` again.")
    first = numbered[0][1]
    if first.startswith("NAME "):
        return _parse_table(numbered, source)
    if first.lstrip()[0] in "{[":
        return _parse_documents(_json_documents(text, source), source)
    if _HEADERLESS_ROW.fullmatch(first.strip()):
        return _parse_headerless(numbered, source)
    if _YAML_START.match(first):
        return _parse_documents(_yaml_documents(text, source), source)
    if _TABULAR.search(first):
        raise _headerless_row_error(f"{source} line {numbered[0][0]}")
    excerpt = first.strip() if len(first.strip()) <= 40 else first.strip()[:40] + "..."
    raise BadInput(
        f"{source} line {numbered[0][0]} ({excerpt!r}) is not istioctl proxy-status output: "
        "expected a NAME header, JSON or YAML; capture the full output including its header line."
    )


@dataclass(frozen=True)
class _Column:
    name: str
    start: int


def _parse_table(numbered: list[tuple[int, str]], source: str) -> list[ProxySync]:
    header_number, header = numbered[0]
    columns = [_Column(match.group(), match.start()) for match in _HEADER_CELL.finditer(header)]
    names = [column.name for column in columns]
    for column in columns:
        if column.name not in _FIXED_COLUMNS and not _TYPE_COLUMN.fullmatch(column.name):
            raise BadInput(
                f"{source} line {header_number}: unknown column {column.name!r} in the "
                "proxy-status header."
            )
    if len(set(names)) != len(names):
        raise BadInput(f"{source} line {header_number}: the header repeats a column name.")
    type_columns = [name for name in names if name not in _FIXED_COLUMNS]
    if not type_columns and "SUBSCRIBED TYPES" not in names:
        raise BadInput(
            f"{source} line {header_number}: the header has neither xDS type columns nor "
            "SUBSCRIBED TYPES, so it holds no sync status."
        )
    records = []
    for number, line in numbered[1:]:
        cells = _cut_row(line, columns, f"{source} line {number}")
        records.append(_table_record(cells, type_columns, f"{source} line {number}"))
    return records


def _cut_row(line: str, columns: list[_Column], where: str) -> dict[str, str]:
    """Cells by the header's column offsets: cells such as `NOT SENT` hold spaces themselves."""
    cells = {}
    for index, column in enumerate(columns):
        end = columns[index + 1].start if index + 1 < len(columns) else None
        raw = line[column.start:end]
        overlaps = column.start > 0 and len(line) > column.start and line[column.start - 1] != " "
        if overlaps or (raw.startswith(" ") and raw.strip()):
            raise BadInput(
                f"{where} does not line up with the header's {column.name} column; capture "
                "the output again without reformatting it."
            )
        cells[column.name] = raw.strip()
    return cells


def _table_record(cells: dict[str, str], type_columns: list[str], where: str) -> ProxySync:
    for required in ("NAME", *type_columns):
        if not cells[required]:
            raise BadInput(f"{where} has no {required} value; the file looks truncated.")
    types = {}
    for column in type_columns:
        state = _STATE_CELL.fullmatch(cells[column])
        if state is None:
            raise BadInput(
                f"{where}: the {column} cell {cells[column]!r} is not a sync state "
                "(SYNCED, STALE, NOT SENT, IGNORED or ERROR)."
            )
        types[short_type_name(column)] = state.group(1).replace("_", " ")
    if "SUBSCRIBED TYPES" in cells:
        subscribed = _subscribed_cell(cells["SUBSCRIBED TYPES"], where)
    else:
        subscribed = [name for name, state in types.items() if state not in _ABSENT_STATES]
    return _record(
        cells["NAME"],
        cluster=cells.get("CLUSTER"),
        istiod=cells.get("ISTIOD"),
        version=cells.get("VERSION"),
        proxy_type=None,
        types=types,
        subscribed=subscribed,
    )


def _subscribed_cell(cell: str, where: str) -> list[str]:
    """`4 (CDS,LDS,EDS,WDS)` or `0`: the count must match the names listed."""
    found = _SUBSCRIBED_CELL.fullmatch(cell)
    names = [name.strip() for name in (found.group(2) or "").split(",")] if found else []
    names = [short_type_name(name) for name in names if name]
    if found is None or int(found.group(1)) != len(names):
        raise BadInput(
            f"{where}: the SUBSCRIBED TYPES cell {cell!r} should read like "
            "'4 (CDS,LDS,EDS,WDS)' or '0'."
        )
    return names


def _parse_headerless(numbered: list[tuple[int, str]], source: str) -> list[ProxySync]:
    records = []
    for number, line in numbered:
        row = _HEADERLESS_ROW.fullmatch(line.strip())
        if row is None:
            raise _headerless_row_error(f"{source} line {number}")
        records.append(
            _record(
                row["name"],
                cluster=row["cluster"],
                istiod=row["istiod"],
                version=row["version"],
                proxy_type=None,
                types={},
                subscribed=_subscribed_cell(row["subscribed"], f"{source} line {number}"),
            )
        )
    return records


def _headerless_row_error(where: str) -> BadInput:
    # Only a 1.27+ row names its types; a row of per-type states means nothing without the
    # header, whose column order changed between releases.
    return BadInput(
        f"{where} is a proxy-status row without the NAME header above it; keep the header when "
        "filtering, e.g. `istioctl proxy-status | grep -e NAME -e waypoint`."
    )


def _json_documents(text: str, source: str) -> list[object]:
    """One JSON value, or several back to back as istioctl prints one response per istiod."""
    decoder = json.JSONDecoder()
    documents, position = [], 0
    try:
        while True:
            while position < len(text) and text[position] in " \t\r\n\ufeff":
                position += 1
            if position == len(text):
                return documents
            document, position = decoder.raw_decode(text, position)
            documents.append(document)
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"{source} is not valid JSON ({_reason(exc)}).") from None


def _yaml_documents(text: str, source: str) -> list[object]:
    try:
        return [document for document in yaml.safe_load_all(text) if document is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = exc.problem or "syntax error"
        raise BadInput(f"{source} is not valid YAML ({problem}{line}).") from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        # PyYAML raises ValueError for impossible dates such as 2024-13-45.
        raise BadInput(f"{source} is not valid YAML ({_reason(exc)}).") from None


def _parse_documents(documents: list[object], source: str) -> list[ProxySync]:
    """`istioctl proxy-status -o json|yaml` (1.30+): DiscoveryResponses of ClientConfigs."""
    responses: list[object] = []
    for document in documents:
        responses.extend(document if isinstance(document, list) else [document])
    if not responses:
        raise BadInput(f"{source} holds no proxy-status document.")
    records = []
    for index, response in enumerate(responses):
        where = f"{source}, document {index + 1}"
        if not isinstance(response, Mapping) or not isinstance(response.get("resources"), list):
            raise BadInput(
                f"{where} is not istioctl proxy-status output: expected a DiscoveryResponse "
                "with a list of resources."
            )
        istiod, istiod_version = _control_plane_id(response.get("controlPlane"))
        for number, resource in enumerate(response["resources"]):
            records.append(_client_config(resource, istiod, istiod_version, f"{where}, resources[{number}]"))
    return records


def _control_plane_id(control_plane: object) -> tuple[str | None, str | None]:
    """istiod's pod and own version from `controlPlane.identifier`, itself a JSON string
    (`{"Component":"istiod","ID":...,"Info":{"version":...}}`); None for what is unreadable."""
    if not isinstance(control_plane, Mapping) or not isinstance(control_plane.get("identifier"), str):
        return None, None
    try:
        identifier = json.loads(control_plane["identifier"])
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(identifier, Mapping):
        return None, None
    pod = identifier.get("ID") if isinstance(identifier.get("ID"), str) else None
    info = identifier.get("Info") if isinstance(identifier.get("Info"), Mapping) else {}
    version = info.get("version") if isinstance(info.get("version"), str) else None
    return pod, version


def _client_config(resource: object, istiod: str | None, istiod_version: str | None, where: str) -> ProxySync:
    resource = _mapping(resource, where)
    if resource.get("@type") != _CLIENT_CONFIG_TYPE:
        raise BadInput(f"{where} is not a ClientConfig (its @type is {resource.get('@type')!r}).")
    node = _mapping(resource.get("node"), f"{where}, node")
    proxy = _text(node, "id", f"{where}, node")
    if not proxy:
        raise BadInput(f"{where} names no proxy (node.id is empty).")
    metadata = _mapping(node.get("metadata") or {}, f"{where}, node.metadata")
    configs = resource.get("genericXdsConfigs") or []
    if not isinstance(configs, list):
        raise BadInput(f"{where}: genericXdsConfigs should be a list.")
    types = {}
    for number, config in enumerate(configs):
        config_where = f"{where}, genericXdsConfigs[{number}]"
        config = _mapping(config, config_where)
        type_url = _text(config, "typeUrl", config_where)
        # protojson leaves out the zero enum UNKNOWN, which the tables print as IGNORED.
        state = _text(config, "configStatus", config_where) or "UNKNOWN"
        if not type_url or state not in ("SYNCED", "STALE", "NOT_SENT", "ERROR", "UNKNOWN"):
            raise BadInput(f"{config_where} has no type URL or an unknown configStatus {state!r}.")
        name = short_type_name(type_url)
        types[name] = IGNORED if state == "UNKNOWN" else state.replace("_", " ")
    return _record(
        proxy,
        cluster=_text(metadata, "CLUSTER_ID", where),
        istiod=istiod,
        version=_text(metadata, "ISTIO_VERSION", where),
        proxy_type=None,
        types=types,
        # The same rule as the tables with a column per type; istioctl 1.27's SUBSCRIBED TYPES
        # column would also count the NOT SENT ones, as the 1.27 and 1.30 samples show.
        subscribed=[name for name, state in types.items() if state not in _ABSENT_STATES],
        namespace_hint=_text(metadata, "NAMESPACE", where),
        istiod_version=istiod_version,
    )


# --- judging a waypoint ----------------------------------------------------------------------


@dataclass(frozen=True)
class SyncFinding:
    """One verdict about a waypoint's connection, sync or version."""

    status: str  # "pass" | "warn" | "fail"
    message: str  # one sentence for the user, naming the proxy
    evidence: tuple[str, ...]


def judge_waypoint_sync(
    sync: ProxySync | None,
    pod: str,
    namespace: str,
    control_plane_version: IstioVersion | None,
) -> list[SyncFinding]:
    """Judge a waypoint pod's sync record: connection and sync first, then its version."""
    subject = f"Waypoint {namespace}/{pod}"
    if sync is None:
        return [SyncFinding(
            "fail",
            f"{subject} is not connected to any istiod; check that the pod is running and "
            "can reach istiod.",
            (),
        )]
    return [
        *_judge_subscription(sync, subject),
        judge_proxy_version(sync.version, pod, namespace, control_plane_version),
    ]


def _sync_evidence(sync: ProxySync) -> tuple[str, ...]:
    listed = f" ({','.join(sync.subscribed)})" if sync.subscribed else ""
    return (
        f"istiod: {sync.istiod or 'unknown'}",
        f"subscribed types: {len(sync.subscribed)}{listed}",
        *(f"{name}: {state}" for name, state in sync.types.items()),
        *(f"error: {error}" for error in sync.errors),
    )


def _judge_subscription(sync: ProxySync, subject: str) -> list[SyncFinding]:
    istiod = sync.istiod or "istiod"
    evidence = _sync_evidence(sync)
    if not sync.subscribed:
        return [SyncFinding(
            "fail",
            f"{subject} is connected to {istiod} but subscribed to nothing, so it holds no "
            "configuration.",
            evidence,
        )]
    findings = []
    missing = [name for name in _WAYPOINT_REQUIRED_TYPES
               if name not in sync.subscribed or sync.types.get(name) in _ABSENT_STATES]
    if missing:
        findings.append(SyncFinding(
            "fail",
            f"{subject} has not received {' or '.join(missing)} from {istiod}, so it cannot "
            "route traffic.",
            evidence,
        ))
    unsynced = [f"{name} {state}" for name, state in sync.types.items() if state in (STALE, ERROR)]
    if unsynced or sync.errors:
        what = ", ".join(unsynced) if unsynced else f"{len(sync.errors)} rejected push(es)"
        findings.append(SyncFinding(
            "fail", f"{subject} is out of sync with {istiod}: {what}.", evidence,
        ))
    if findings:
        return findings
    if sync.types:
        state = f"in sync for {', '.join(sync.subscribed)}"
    else:  # istioctl's 1.27+ table lists the types but not their state
        state = f"subscribed to {', '.join(sync.subscribed)}"
    return [SyncFinding("pass", f"{subject} is connected to {istiod} and {state}.", evidence)]


def judge_proxy_version(
    version: str | None, pod: str, namespace: str, control_plane: IstioVersion | None
) -> SyncFinding:
    """The proxy's own version (from istiod's record or its istio_build stat) against its control plane."""
    subject = f"Waypoint {namespace}/{pod}"
    proxy = parse_version(version) if version else None
    if proxy is None:
        shown = f" ({version!r})" if version else ""
        return SyncFinding(
            "warn", f"{subject}: its proxy version{shown} could not be read.",
            (f"proxy version: {version or 'none reported'}",),
        )
    if control_plane is None:
        return SyncFinding(
            "warn",
            f"{subject} runs {proxy.raw}, but the control-plane version is unknown, so the "
            "two could not be compared.",
            (f"proxy version: {proxy.raw}",),
        )
    evidence = (f"proxy version: {proxy.raw}", f"control-plane version: {control_plane.raw}")
    judgement = judge_skew(control_plane, proxy)
    if judgement.status == "ok" and judgement.minor_skew == 0:
        return SyncFinding(
            "pass",
            f"{subject} runs {proxy.raw}, the same minor version as the control plane "
            f"({control_plane.raw}).",
            evidence,
        )
    if judgement.status == "ok":
        return SyncFinding(
            "warn",
            f"{subject} runs {proxy.raw}, one minor version behind the control plane "
            f"({control_plane.raw}): not rolled to the new version yet; InPlace should roll it.",
            evidence,
        )
    if judgement.status == "ahead":
        problem = "ahead of the control plane, which Istio never supports"
    elif judgement.status == "too-old":
        problem = (f"{judgement.minor_skew} minor versions behind the control plane; restart "
                   "the waypoint so istiod rolls it")
    else:
        problem = "a different major version from the control plane"
    return SyncFinding(
        "fail", f"{subject} runs {proxy.raw}, {problem} (control plane: {control_plane.raw}).",
        evidence,
    )


def judge_proxy_xds(stats: ProxyXds) -> SyncFinding:
    """A waypoint's connection and sync as its own Envoy reports them (envoystats.py says what is seen).

    Only CDS and LDS are visible, as counters since the pod started: a rejection may have been
    followed by an accepted push, so it warns; a push still in flight cannot be seen at all.
    """
    subject = f"Waypoint {stats.namespace}/{stats.pod}"
    evidence = stats.evidence
    if stats.server_state != 0:
        state = SERVER_STATES.get(stats.server_state, f"state {stats.server_state}")
        return SyncFinding("fail", f"{subject}: its Envoy is {state}, not LIVE, so it is not serving.", evidence)
    if stats.xds_streams == 0:
        return SyncFinding(
            "fail",
            f"{subject} has no open xDS stream (its Envoy stats show none to pilot-agent, which keeps one "
            "only while istiod answers), so it receives no configuration; check that istiod is reachable.",
            evidence,
        )
    never = [name for name, accepted in (("CDS", stats.cds_accepted), ("LDS", stats.lds_accepted)) if not accepted]
    if never:
        return SyncFinding(
            "fail", f"{subject} has never accepted {' or '.join(never)} from istiod, so it cannot route traffic.",
            evidence,
        )
    rejected = [f"{count} {name}" for name, count in (("CDS", stats.cds_rejected), ("LDS", stats.lds_rejected))
                if count]
    if rejected:
        return SyncFinding(
            "warn",
            f"{subject} rejected {' and '.join(rejected)} push(es) since it started; its stats do not say "
            "whether a later push was accepted (istioctl proxy-status does).",
            evidence,
        )
    return SyncFinding(
        "pass",
        f"{subject} has an open xDS stream and accepted {stats.cds_accepted} CDS and {stats.lds_accepted} LDS "
        "push(es), none rejected (its own Envoy stats; EDS, RDS and WDS are not in them).",
        evidence,
    )
