"""A probe's cluster I/O: find the client pod, send the requests from it, judge what came back.

One exec session runs one curl for every request (argv from `build_curl_argv`, never a shell)
and its stdout is parsed as it streams in. A broken exec stream is re-established for the
requests still to send and the requests it swallowed are counted as lost; in continuous mode
this never ends the run. Ctrl-C ends it early with what was gathered.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import BadInput, ClusterUnavailable, Inconclusive
from ..kube.client import (
    ExecFailed,
    ExecutableMissing,
    NotFound,
    PermissionDenied,
    ResourceNotInstalled,
)
from ..kube.resources import DEPLOYMENTS, HTTPROUTES, NAMESPACES, PODS
from .curl import MIN_CURL_CONTINUOUS, CurlOutputParser, Response, build_curl_argv
from .expectations import (
    DEFAULT_CHECK_COUNT,
    DEFAULT_MIN_AVAILABILITY,
    Expectation,
    ProbeVerdict,
    Served,
    SplitDesign,
    is_as_expected,
    judge,
)
from .sequential import (
    BATCH_SIZE,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_MAX_UNMATCHED,
    DEFAULT_TOLERANCE,
    EQUIVALENCE,
    SEQUENTIAL,
)
from .stats import DEFAULT_ALPHA
from .telemetry import Telemetry, TelemetryUnavailable, workload_name

# Containers that carry the mesh, not the application: never a probe client.
PROXY_CONTAINERS = frozenset({"istio-proxy", "istio-init", "istio-validation", "istio-cni", "ztunnel"})
DATAPLANE_MODE = "istio.io/dataplane-mode"
DEFAULT_INTERVAL_S = 1.0
# One-shot probes re-establish a broken stream this often in a row without a new response.
MAX_FRUITLESS_RECONNECTS = 3
RECONNECT_PAUSE_S = 0.5
_CLIENT_KINDS = {"pod": "pod", "pods": "pod", "po": "pod",
                 "deploy": "deployment", "deployment": "deployment", "deployments": "deployment",
                 "deployment.apps": "deployment", "deployments.apps": "deployment"}


@dataclass(frozen=True)
class ClientPod:
    """Where the probe's requests start: a pod's container and the mesh identity it speaks with."""

    namespace: str
    pod: str
    container: str
    service_account: str
    enrolled: bool = True
    warnings: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)  # the pod's, to match policy selectors
    workload: str = ""  # what Istio's telemetry names it: source_workload (its Deployment, usually)

    @property
    def identity(self) -> str:
        """`namespace/serviceaccount`, as an AuthorizationPolicy principal names it after `ns/`/`sa/`."""
        return f"{self.namespace}/{self.service_account}"


# ------------------------------------------------------------------------------------ the client

def parse_client(spec: str) -> tuple[str, str]:
    """`pod/NAME`, `deploy/NAME` or a bare pod name -> ("pod" | "deployment", NAME)."""
    kind, slash, name = spec.partition("/")
    if not slash:
        kind, name = "pod", spec
    elif kind.lower() not in _CLIENT_KINDS:
        raise BadInput(f"CLIENT {spec!r} is not a pod or deployment; pass pod/NAME, deploy/NAME or a pod name.")
    if not name or "/" in name:
        raise BadInput(f"CLIENT {spec!r} names no single object; pass pod/NAME, deploy/NAME or a pod name.")
    return _CLIENT_KINDS.get(kind.lower(), "pod"), name


def resolve_client(cluster, namespace: str, spec: str, container: str | None = None) -> ClientPod:
    """The pod and container to probe from, or Inconclusive (exit 4) saying why there is none."""
    kind, name = parse_client(spec)
    if kind == "deployment":
        pod = _ready_pod_of_deployment(cluster, namespace, name)
    else:
        try:
            pod = cluster.get(PODS, name, namespace)
        except NotFound:
            raise Inconclusive(f'Client pod "{name}" was not found in namespace "{namespace}"; check the name '
                               f"with kubectl get pods -n {namespace}, or pass -n.") from None
        phase = (pod.get("status") or {}).get("phase") or "Unknown"
        if phase != "Running":
            raise Inconclusive(f'Client pod "{namespace}/{name}" is {phase}, not Running; wait for it or pick '
                               "another CLIENT.")
    chosen = _client_container(pod, container)
    enrolled, warnings = _enrolment(cluster, pod)
    return ClientPod(namespace, pod["metadata"]["name"], chosen, _service_account(pod), enrolled, warnings,
                     dict(pod["metadata"].get("labels") or {}), workload_name(pod))


def find_client_pods(cluster, namespace: str | None = None, service_account: str | None = None,
                     exclude_pods: Iterable[str] = ()) -> list[ClientPod]:
    """Ready, mesh-enrolled pods with an application container, to probe from automatically.

    `service_account` is "ns/sa"; `exclude_pods` holds "ns/name" (or bare names). Whether a
    container has curl shows only when a probe runs (Inconclusive then: try the next pod).
    """
    wanted_sa = None
    if service_account:
        sa_namespace, slash, wanted_sa = service_account.partition("/")
        if not slash or not sa_namespace or not wanted_sa:
            raise BadInput(f"Service account {service_account!r} is not NAMESPACE/NAME; write it as curl/curl.")
        if namespace and namespace != sa_namespace:
            return []
        namespace = sa_namespace
    excluded = set(exclude_pods)
    pods = cluster.list(PODS, namespace, field_selector="status.phase=Running")
    namespace_labels = _namespace_labels(cluster, {p["metadata"]["namespace"] for p in pods})
    clients = []
    for pod in sorted(pods, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])):
        meta = pod["metadata"]
        if {meta["name"], f"{meta['namespace']}/{meta['name']}"} & excluded or not _ready(pod):
            continue
        if wanted_sa and _service_account(pod) != wanted_sa:
            continue
        containers = _application_containers(pod)
        mode = _dataplane_mode(pod, namespace_labels.get(meta["namespace"]))
        if containers and _enrolled(pod, mode):
            clients.append(ClientPod(meta["namespace"], meta["name"], containers[0], _service_account(pod),
                                     labels=dict(meta.get("labels") or {}), workload=workload_name(pod)))
    return clients


def _ready_pod_of_deployment(cluster, namespace: str, name: str) -> dict:
    try:
        deployment = cluster.get(DEPLOYMENTS, name, namespace)
    except NotFound:
        raise Inconclusive(f'Client deployment "{name}" was not found in namespace "{namespace}"; check the name '
                           f"with kubectl get deployments -n {namespace}, or pass -n.") from None
    selector = label_selector((deployment.get("spec") or {}).get("selector") or {})
    pods = cluster.list(PODS, namespace, label_selector=selector, field_selector="status.phase=Running")
    ready = sorted((p for p in pods if _ready(p)), key=lambda p: p["metadata"]["name"])
    if not ready:
        raise Inconclusive(f'Deployment "{namespace}/{name}" has no Running and Ready pod to send requests from; '
                           "wait for its rollout or pick another CLIENT.")
    return ready[0]


def label_selector(selector: dict) -> str:
    """A Deployment's spec.selector (matchLabels and matchExpressions) as a label selector string."""
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
        elif operator in ("In", "NotIn"):
            parts.append(f"{key} {operator.lower()} ({','.join(values)})")
    return ",".join(parts)


def _ready(pod: dict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _service_account(pod: dict) -> str:
    spec = pod.get("spec") or {}
    return spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"


def _application_containers(pod: dict) -> list[str]:
    """Containers that are not the mesh's, the annotated default container first (as kubectl does)."""
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or [] if c["name"] not in PROXY_CONTAINERS]
    default = ((pod["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container"))
    return sorted(names, key=lambda n: n != default)


def _client_container(pod: dict, container: str | None) -> str:
    meta = pod["metadata"]
    where = f'{meta["namespace"]}/{meta["name"]}'
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    if container is None:
        candidates = _application_containers(pod)
        if not candidates:
            raise Inconclusive(f'Pod "{where}" runs only mesh proxy containers ({", ".join(names)}); pick another '
                               "CLIENT whose application container has curl.")
        container = candidates[0]
    elif container not in names:
        raise Inconclusive(f'Pod "{where}" has no container "{container}"; pick one of {", ".join(names)} with -c.')
    statuses = {s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or []}
    if "running" not in (statuses.get(container, {}).get("state") or {}):
        raise Inconclusive(f'Container "{container}" of pod "{where}" is not running; wait for it or pick another '
                           "with -c.")
    return container


def _namespace_labels(cluster, namespaces: set[str]) -> dict[str, dict | None]:
    """Labels per namespace; None where they cannot be read (no permission)."""
    labels: dict[str, dict | None] = {}
    for name in sorted(namespaces):
        try:
            labels[name] = (cluster.get(NAMESPACES, name).get("metadata") or {}).get("labels") or {}
        except (NotFound, PermissionDenied):
            labels[name] = None
    return labels


def _dataplane_mode(pod: dict, namespace_labels: dict | None) -> str | None:
    """The pod's label wins over its namespace's, as in istio-cni; None when unknown."""
    own = (pod["metadata"].get("labels") or {}).get(DATAPLANE_MODE)
    if own is not None:
        return own
    return None if namespace_labels is None else namespace_labels.get(DATAPLANE_MODE, "")


def _enrolled(pod: dict, mode: str | None) -> bool:
    has_sidecar = any(c["name"] == "istio-proxy" for c in (pod.get("spec") or {}).get("containers") or [])
    return mode == "ambient" or has_sidecar


def _enrolment(cluster, pod: dict) -> tuple[bool, tuple[str, ...]]:
    meta = pod["metadata"]
    mode = _dataplane_mode(pod, _namespace_labels(cluster, {meta["namespace"]})[meta["namespace"]])
    where = f'{meta["namespace"]}/{meta["name"]}'
    if _enrolled(pod, mode):
        return True, ()
    if mode is None:
        unknown = (f'Could not read the labels of namespace "{meta["namespace"]}", so whether client pod "{where}" '
                   "is in the ambient mesh is unknown; authorization results assume it is.")
        return True, (unknown,)
    outside = (f'Client pod "{where}" is not in the ambient mesh ({DATAPLANE_MODE} is {mode or "not set"}): its '
               f"requests carry no identity of {meta['namespace']}/{_service_account(pod)}, so authorization "
               "results do not show what that service account would get.")
    return False, (outside,)


# ------------------------------------------------------------------------------------ expectations

def fetch_route_weights(cluster, namespace: str, name: str) -> dict[str, float | None]:
    """Backend name -> weight (None when unset) of an HTTPRoute's only rule with backendRefs."""
    try:
        route = cluster.get(HTTPROUTES, name, namespace)
    except NotFound:
        raise BadInput(f'HTTPRoute "{name}" was not found in namespace "{namespace}"; check it with '
                       f"kubectl get httproutes -n {namespace}, or write --route NAMESPACE/{name}.") from None
    except ResourceNotInstalled:
        raise BadInput(f'HTTPRoute "{namespace}/{name}" cannot exist: the Gateway API is not installed; pass '
                       "--expect-split instead.") from None
    rules = [rule for rule in (route.get("spec") or {}).get("rules") or [] if rule.get("backendRefs")]
    if len(rules) != 1:
        raise BadInput(f'HTTPRoute "{namespace}/{name}" has {len(rules) or "no"} rules with backendRefs, so the '
                       "expected split is ambiguous; pass --expect-split NAME=WEIGHT,... instead.")
    weights: dict[str, float | None] = {}
    for ref in rules[0]["backendRefs"]:
        name, weight = ref["name"], ref.get("weight")
        if name in weights:  # the same backend twice: its weights add up (unset = 1)
            weight = (1.0 if weights[name] is None else weights[name]) + (1.0 if weight is None else weight)
        weights[name] = weight
    return weights


# ------------------------------------------------------------------------------------ running

@dataclass(frozen=True)
class ProbeProgress:
    """Live counts for the renderer while a probe runs."""

    sent: int  # requests with a result, plus failures curl reported ahead of their result
    ok: int
    errors: int
    outage_s: float  # how long every request has failed so far; 0 after a success
    reconnects: int
    elapsed_s: float
    planned: int


@dataclass(frozen=True)
class ProbeOutcome:
    """Everything a ProbeReport shows: the client, the run, and the verdict."""

    client: ClientPod
    url: str
    method: str
    verdict: ProbeVerdict
    alpha: float
    elapsed_s: float
    reconnects: int = 0
    interrupted: bool = False
    duration_s: float | None = None
    interval_s: float | None = None
    curl_errors: tuple[str, ...] = ()  # distinct error lines curl printed, first few
    notes: tuple[str, ...] = ()  # how who-served was measured, when that needs saying


@dataclass
class _Run:
    """Mutable state of one probe run, shared by its sessions."""

    expectation: Expectation
    planned: int
    started: float
    clock: Callable[[], float]
    progress: Callable[[ProbeProgress], None] | None
    responses: list[Response] = field(default_factory=list)
    lost: int = 0
    reconnects: int = 0
    ok: int = 0
    curl_failures_parsed: int = 0
    curl_failures_seen: int = 0
    failing_since: float | None = None
    curl_errors: list[str] = field(default_factory=list)
    stderr_partial: str = ""  # the start of a line whose end has not arrived yet

    def sent(self) -> int:
        return len(self.responses) + self.lost

    def add(self, response: Response) -> None:
        self.responses.append(response)
        good = is_as_expected(self.expectation, response)
        self.ok += good
        self.curl_failures_parsed += response.exit_code != 0
        self._failing(not good)

    def stderr(self, text: str, final: bool = False) -> None:
        """curl prints an error line the moment a transfer fails, while its result is still buffered.

        Exec frames may split a line anywhere: only complete lines are read; `final` reads the rest.
        """
        lines = (self.stderr_partial + text).split("\n")
        self.stderr_partial = "" if final else lines.pop()
        for line in lines:
            if line.startswith("curl: ("):
                self.curl_failures_seen += 1
                if len(self.curl_errors) < 5 and line not in self.curl_errors:
                    self.curl_errors.append(line)
                if self.curl_failures_seen > self.curl_failures_parsed:
                    self._failing(True)
            elif line.strip() and len(self.curl_errors) < 5 and line not in self.curl_errors:
                self.curl_errors.append(line.strip())
        self.report()

    def _failing(self, failed: bool) -> None:
        if not failed:
            self.failing_since = None
        elif self.failing_since is None:
            self.failing_since = self.clock()

    def report(self) -> None:
        if self.progress is None:
            return
        pending = max(0, self.curl_failures_seen - self.curl_failures_parsed)
        now = self.clock()
        self.progress(ProbeProgress(
            sent=len(self.responses) + pending, ok=self.ok, errors=len(self.responses) - self.ok + pending,
            outage_s=now - self.failing_since if self.failing_since is not None else 0.0,
            reconnects=self.reconnects, elapsed_s=now - self.started, planned=self.planned))


def run_probe(cluster, client: ClientPod, url: str, expectation: Expectation, *, count: int | None = None,
              method: str = "GET", headers: Sequence[str] = (), timeout_s: float = 5.0,
              alpha: float = DEFAULT_ALPHA, duration_s: float | None = None, interval_s: float | None = None,
              min_availability: float = DEFAULT_MIN_AVAILABILITY,
              progress: Callable[[ProbeProgress], None] | None = None,
              clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
              tolerance: float = DEFAULT_TOLERANCE, max_requests: int = DEFAULT_MAX_REQUESTS,
              max_unmatched: float = DEFAULT_MAX_UNMATCHED, telemetry: Telemetry | None = None,
              batch_size: int = BATCH_SIZE) -> ProbeOutcome:
    """Send the requests from `client` and judge them; continuous mode with `duration_s`.

    One-shot: `count` requests (a split is then judged by the equivalence test). Without `count`,
    a split is judged by the sequential test: batches of `batch_size` requests, one exec each,
    until it decides or `max_requests` were sent; other expectations send DEFAULT_CHECK_COUNT.
    Continuous: one request every `interval_s` (default 1s) for `duration_s`. With `telemetry`
    (the waypoint's counters), who served is read from the waypoint before and after each batch;
    if it cannot be read, the bodies say, and the outcome notes why.
    Raises Inconclusive when no request can be sent at all (no curl, pod gone).
    """
    continuous = duration_s is not None
    sequential = not continuous and count is None and expectation.shares is not None
    if continuous:
        interval_s = interval_s or DEFAULT_INTERVAL_S
        planned = max(1, math.floor(duration_s / interval_s + 1e-9))
    elif sequential:
        if max_requests < 1:
            raise BadInput(f"--max-requests {max_requests} is not a positive number; the default is "
                           f"{DEFAULT_MAX_REQUESTS}.")
        planned = min(batch_size, max_requests)
    elif count is None:
        planned = DEFAULT_CHECK_COUNT
    elif count < 1:
        raise BadInput(f"--count {count} is not a positive number; send at least 1 request.")
    else:
        planned = count
    design = SplitDesign(SEQUENTIAL if sequential else EQUIVALENCE, tolerance, max_unmatched,
                         max_requests=max_requests)
    run = _Run(expectation, planned, clock(), clock, progress)
    sender = _Sender(cluster, client, url, run, secrets.token_hex(16), method, tuple(headers), timeout_s,
                     interval_s if continuous else None, clock, sleep)
    notes: list[str] = []
    telemetry = _start_telemetry(telemetry, expectation, notes)
    looks: list[dict[str, int]] = []
    interrupted = False
    try:
        while True:
            completed = sender.send()
            served = _read_telemetry(telemetry, run, notes)
            if served is None and telemetry is not None:
                telemetry = None
                looks.clear()  # the earlier looks counted telemetry, the next ones count bodies
            if not sequential or not completed or run.planned >= max_requests:
                break
            verdict = _judge(expectation, run, run.sent(), alpha, min_availability, design, looks, served)
            if not verdict.undecided:
                break
            looks.append({name: verdict.backends.get(name, 0) for name in expectation.shares})
            run.planned = min(max_requests, run.planned + batch_size)
    except KeyboardInterrupt:
        if not run.responses:
            raise
        interrupted = True
        served = _read_telemetry(telemetry, run, notes)
    sent = run.sent()
    if not interrupted:  # requests a broken stream kept from being sent count as lost too
        sent = max(sent, run.planned)
    verdict = _judge(expectation, run, sent, alpha, min_availability, design, looks, served,
                     interval_s if continuous else None)
    if served is not None:
        notes += served.notes
    return ProbeOutcome(client, url, method, verdict, alpha, clock() - run.started, run.reconnects, interrupted,
                        duration_s, interval_s if continuous else None, tuple(run.curl_errors), tuple(notes))


def _judge(expectation: Expectation, run: _Run, sent: int, alpha: float, min_availability: float,
           design: SplitDesign, looks: list[dict[str, int]], served: Served | None,
           interval_s: float | None = None) -> ProbeVerdict:
    return judge(expectation, run.responses, sent=sent, alpha=alpha, min_availability=min_availability,
                 interval_s=interval_s, design=design, looks=looks, served=served)


def _start_telemetry(telemetry: Telemetry | None, expectation: Expectation, notes: list[str]) -> Telemetry | None:
    """Take the waypoint's counters before the first request; None (bodies decide) if they cannot be read."""
    if telemetry is None or expectation.shares is None:
        return None
    try:
        telemetry.start()
    except TelemetryUnavailable as error:
        notes.append(f"Who served was read from the response bodies: {error.reason}")
        return None
    return telemetry


def _read_telemetry(telemetry: Telemetry | None, run: _Run, notes: list[str]) -> Served | None:
    if telemetry is None:
        return None
    try:
        return telemetry.served(answered=sum(r.status != "000" for r in run.responses))
    except TelemetryUnavailable as error:
        notes.append(f"Who served was read from the response bodies: {error.reason}")
        return None


@dataclass
class _Sender:
    """Sends requests until `run.planned` have been sent, re-establishing broken exec streams."""

    cluster: object
    client: ClientPod
    url: str
    run: _Run
    nonce: str
    method: str
    headers: tuple[str, ...]
    timeout_s: float
    interval_s: float | None  # continuous mode's pacing
    clock: Callable[[], float]
    sleep: Callable[[float], None]

    def send(self) -> bool:
        """False when a one-shot probe gave up on a stream that kept breaking."""
        run, continuous = self.run, self.interval_s is not None
        fruitless = 0
        while (remaining := run.planned - len(run.responses) - run.lost) > 0:
            if continuous and run.reconnects:
                # After a break, the requests whose time has passed are lost; send the rest on schedule.
                remaining = min(remaining, run.planned - math.floor((self.clock() - run.started) / self.interval_s))
                if remaining <= 0:
                    break
            argv = build_curl_argv(self.url, remaining, nonce=self.nonce, method=self.method, headers=self.headers,
                                   timeout_s=self.timeout_s, interval_s=self.interval_s)
            before = len(run.responses)
            broken = _session(self.cluster, self.client, argv, run, self.nonce, remaining, continuous,
                              self.interval_s, self.timeout_s, self.clock)
            if not broken:
                break
            run.reconnects += 1
            fruitless = 0 if len(run.responses) > before else fruitless + 1
            if not continuous and fruitless > MAX_FRUITLESS_RECONNECTS:
                return False
            run.report()
            if len(run.responses) == before:
                self.sleep(RECONNECT_PAUSE_S)
        return True


def _session(cluster, client: ClientPod, argv: list[str], run: _Run, nonce: str, count: int, continuous: bool,
             interval_s: float | None, timeout_s: float, clock: Callable[[], float]) -> bool:
    """One exec of curl for `count` requests; True when the stream broke before curl finished.

    Requests the break swallowed are added to `run.lost`: in continuous mode those curl should
    have started by then (it starts one per interval), else the one in flight.
    """
    parser = CurlOutputParser(nonce)
    started, got = clock(), 0
    budget = count * (max(interval_s or 0.0, 0.0) + timeout_s) + 30.0
    try:
        stream = cluster.exec_stream(client.namespace, client.pod, client.container, argv, timeout=budget)
    except NotFound:
        raise Inconclusive(f'Client pod "{client.namespace}/{client.pod}" is gone; pick another CLIENT.') from None
    except (ClusterUnavailable, ExecFailed) as error:
        if continuous and not isinstance(error, PermissionDenied):
            return True  # the requests this gap keeps from being sent are counted at the end
        if isinstance(error, ExecFailed):
            raise Inconclusive(f"Could not run curl in the client pod: {error.message}; pick another CLIENT.") from None
        raise
    stderr = bytearray()
    try:
        for channel, data in stream:
            if channel == 1:
                for response in parser.feed(data):
                    got += 1
                    run.add(response)
                run.report()
            else:
                stderr += data
                run.stderr(data.decode("utf-8", "replace"))
        broken = stream.broken
    except ExecutableMissing:
        raise Inconclusive(f'The client container "{client.container}" of pod "{client.namespace}/{client.pod}" has '
                           "no curl; pick another with -c or another CLIENT.") from None
    except ExecFailed as error:
        if not continuous:
            raise Inconclusive(f"curl in the client pod did not finish: {error.message}; retry, or lower --count.") \
                from None
        broken = True
    finally:
        stream.close()
        run.stderr("", final=True)
    if not broken and got == 0 and stream.returncode not in (0, None):
        _explain_curl_failure(stderr.decode("utf-8", "replace"), stream.returncode, continuous)
    if broken or got < count:
        run.lost += _swallowed(count, got, clock() - started, interval_s, continuous)
    return broken


def _swallowed(count: int, got: int, elapsed_s: float, interval_s: float | None, continuous: bool) -> int:
    if continuous:
        started = min(count, math.floor(elapsed_s / interval_s) + 1)
        return max(0, started - got)
    return 1 if got < count else 0


def _explain_curl_failure(stderr: str, code: int, continuous: bool) -> None:
    """curl stopped before its first transfer: an option it lacks, or something else it said."""
    said = next((line.strip() for line in stderr.splitlines() if line.strip()), "")
    if continuous and "rate" in said:
        raise Inconclusive(f"curl in the client pod does not know --rate ({said}); continuous mode needs curl "
                           f"{MIN_CURL_CONTINUOUS} or newer in the client container.")
    if code in (2, 3, 4):  # curl's "failed to initialize", "URL malformat", "feature not built in"
        raise Inconclusive(f"curl in the client pod refused the request ({said or f'exit {code}'}); use a client "
                           "container with a recent curl.")
