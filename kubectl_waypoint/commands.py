"""Each command's flow: connect, gather, judge, render, and the exit code of the result."""

from __future__ import annotations

import sys

import click

from .errors import BadInput, ExitCode, WaypointError, kubectl_style
from .render.safe import safe
from .render.sentences import (interrupted_sentence, missing_namespace_sentence, plan_sentence, skew_sentence,
                               verify_sentence)
from .render.text import plural

RESULT_EXIT_CODES = {"pass": ExitCode.OK, "warn": ExitCode.OK, "fail": ExitCode.FAILED,
                     "inconclusive": ExitCode.INCONCLUSIVE}
INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


def conclude(code: int, sentence: str) -> int:
    """The contract's last word on a non-zero exit: one sentence on stderr starting `error:`."""
    if code != ExitCode.OK:
        click.echo(f"error: {kubectl_style(sentence)}", err=True)
    return code


def connect(flags):
    """Resolve the kubeconfig like kubectl does and open a read-only cluster client."""
    from .kube.client import Cluster
    from .kube.config import resolve_target

    return Cluster(resolve_target(flags))


def warn_permissions(cluster, command: str, namespace: str | None, checks: list[str] | None = None) -> None:
    """Ask the API server in advance (SelfSubjectAccessReview) for everything the command needs.

    Every missing core permission ends the command at once (exit 3), each with its RBAC rule; a
    missing optional one is a warning on stderr, and the check that needs it says so again.
    """
    from .kube.preflight import preflight

    for warning in preflight(cluster, command, namespace, checks=checks):
        click.echo(f"warning: {safe(warning)}", err=True)


def skew_result(cluster, namespace: str | None):
    from .discovery import fetch_inventory
    from .skew import judge_inventory

    return judge_inventory(fetch_inventory(cluster, namespace))


def render_skew_output(result, output: str, no_colour: bool, origin: dict | None = None, plan=None) -> str:
    if output == "table":
        from .render.skew import render_skew
        from .render.text import style_for

        return render_skew(result, style_for(sys.stdout, no_colour), plan)
    from .render.structured import dump
    from .report import skew_report

    return dump(skew_report(result, origin, plan), output)


def run_skew(flags, *, all_namespaces: bool, output: str, no_colour: bool, target_version: str | None = None) -> int:
    from .report import report_origin

    target = None
    if target_version is not None:
        from .plan import parse_target

        target = parse_target(target_version)  # a malformed version fails before any request
    cluster = connect(flags)
    namespace = cluster.target.namespace if flags.namespace and not all_namespaces else None
    from .discovery import fetch_inventory
    from .skew import judge_inventory

    inventory = fetch_inventory(cluster, namespace)
    result = judge_inventory(inventory)
    plan = upgrade_plan(cluster, result, inventory.sail.istios, target) if target else None
    click.echo(render_skew_output(result, output, no_colour, report_origin(cluster.target), plan), nl=False)
    if plan is not None:
        return conclude(RESULT_EXIT_CODES[plan.result], plan_sentence(plan) if plan.blockers else "")
    return conclude(RESULT_EXIT_CODES[result.result], skew_sentence(result))


def upgrade_plan(cluster, result, sail_istios: list[dict], target):
    """Read what the plan needs beyond skew (server version, Gateway API CRDs) and judge the upgrade."""
    from .kube import resources as r
    from .kube.client import NotFound, PermissionDenied, ResourceNotInstalled
    from .kube.preflight import kubernetes_version
    from .plan import plan_upgrade

    try:
        server_version = kubernetes_version(cluster.request_json("GET", "/version"))
    except WaypointError:
        server_version = None
    bundle, state = None, "installed"
    try:
        crd = cluster.get(r.CRDS, "gateways.gateway.networking.k8s.io")
        bundle = ((crd.get("metadata") or {}).get("annotations") or {}).get("gateway.networking.k8s.io/bundle-version")
    except (NotFound, ResourceNotInstalled):
        state = "absent"
    except PermissionDenied as exc:
        state = f"unreadable: {exc.message}"
    return plan_upgrade(result, target, sail_istios=sail_istios, kubernetes_version=server_version,
                        gateway_api_version=bundle, gateway_api_state=state)


class WaitObserver:
    """Tells the user what verify is waiting for: a spinner on a terminal, a line per retry elsewhere."""

    FRAMES = "|/-\\"

    def __init__(self, stream):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.frame = 0

    def check_started(self, spec) -> None:
        if self.tty:
            self.frame = (self.frame + 1) % len(self.FRAMES)
            self.stream.write(f"\r{self.FRAMES[self.frame]} {spec.id:<40}")
            self.stream.flush()

    def retrying(self, failing: list[str], remaining_s: float) -> None:
        text = (f"waiting for {plural(len(failing), 'failing check')} to pass ({', '.join(failing)}), "
                f"{remaining_s:.0f}s left")
        self.stream.write(f"\r{text}" if self.tty else f"{text}\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def run_verify(flags, *, options, only: list[str], skip: list[str], wait_s: float, output: str,
               junit_file: str | None, no_colour: bool) -> int:
    """Run the checks and report; the JUnit file is written on every exit, the report even after Ctrl-C."""
    from .checks.catalogue import load_catalogue
    from .checks.facts import VerifyFacts
    from .checks.judges import JUDGES
    from .checks.runner import Interrupted, VerifyRun, run_until, with_prerequisites
    from .errors import WaypointError
    from .report import report_origin

    catalogue = load_catalogue()
    selected = catalogue.select(only, skip)
    junit = JunitFile(junit_file) if junit_file else None
    namespace = flags.namespace
    try:
        cluster = connect(flags)
        namespace = cluster.target.namespace
        if not cluster.target.namespace_explicit and namespace == "default":  # kubectl's fallback, say so
            click.echo('checking namespace "default": no -n given and the context sets no other; '
                       "pass -n NAMESPACE to check another", err=True)
        origin = report_origin(cluster.target)
        warn_permissions(cluster, "verify", namespace, [spec.id for spec in with_prerequisites(catalogue, selected)])
        observer = WaitObserver(sys.stderr) if wait_s or sys.stderr.isatty() else None
        try:
            run = run_until(catalogue, selected, lambda: VerifyFacts(cluster, namespace, options), JUDGES, wait_s,
                            observer)
        finally:
            if observer:
                observer.done()
    except KeyboardInterrupt as interrupt:
        partial = interrupt.run if isinstance(interrupt, Interrupted) else VerifyRun()
        if not partial.results:
            if junit:
                junit.error(namespace, "interrupted (Ctrl-C) before any check finished")
            raise
        sentence = interrupted_sentence(partial, len(selected))
        if junit:
            junit.run(partial, catalogue, namespace, origin, interrupted=sentence)
        click.echo(render_verify_output(partial, catalogue, namespace, output, no_colour, origin, interrupted=True),
                   nl=False)
        return conclude(INTERRUPTED, sentence)
    except WaypointError as error:
        if junit:
            junit.error(namespace, error.message)
        raise
    if junit:
        junit.run(run, catalogue, namespace, origin)
    missing = next((r for r in run.results if r.id == "namespace-exists" and r.status == "fail"), None)
    if missing is not None and output in ("table", "short"):  # one sentence, not a report of skipped checks
        return conclude(ExitCode.FAILED, missing_namespace_sentence(missing, cluster.target))
    click.echo(render_verify_output(run, catalogue, namespace, output, no_colour, origin), nl=False)
    return conclude(RESULT_EXIT_CODES[run.result], verify_sentence(run, namespace))


def run_verify_fleet(flags, *, options, only: list[str], skip: list[str], wait_s: float, output: str,
                     junit_file: str | None, no_colour: bool) -> int:
    """`verify -A`: every namespace with a waypoint or istio.io/use-waypoint, one row each, the worst exit."""
    from .checks.catalogue import load_catalogue
    from .checks.facts import VerifyFacts
    from .checks.fleet import SharedReads, run_fleet, waypoint_namespaces
    from .checks.judges import JUDGES
    from .render.sentences import fleet_sentence
    from .checks.runner import with_prerequisites
    from .report import fleet_report, report_origin

    catalogue = load_catalogue()
    selected = catalogue.select(only, skip)
    junit = JunitFile(junit_file) if junit_file else None
    try:
        cluster = connect(flags)
        origin = report_origin(cluster.target)
        warn_permissions(cluster, "verify", None, [spec.id for spec in with_prerequisites(catalogue, selected)])
        reads = SharedReads(cluster)
        namespaces = waypoint_namespaces(reads)
        fleet = run_fleet(reads, catalogue, selected, options, JUDGES, wait_s, namespaces)
    except WaypointError as error:
        if junit:
            junit.error(None, error.message)
        raise
    # the waypoints serving each namespace (its own or another's), from the lists already read
    waypoints = {ns: len(VerifyFacts(reads, ns, options).waypoints) for ns in namespaces}
    if junit:
        from .render.junit import junit_fleet_xml

        with junit.stream:
            junit.stream.write(junit_fleet_xml(fleet.runs, origin))
    if output in ("table", "short"):
        from .render.text import style_for
        from .render.verify import render_fleet

        click.echo(render_fleet(fleet.runs, waypoints, style_for(sys.stdout, no_colour)), nl=False)
    else:
        from .render.structured import dump

        click.echo(dump(fleet_report(fleet.runs, waypoints, fleet.result, origin), output), nl=False)
    return conclude(RESULT_EXIT_CODES[fleet.result], fleet_sentence(fleet))


class JunitFile:
    """--junit-file, opened before the run so a bad path fails in a second, not after the probes."""

    def __init__(self, path: str):
        self.stream = _open_for_writing(path, "--junit-file")

    def run(self, run, catalogue, namespace: str, origin: dict, interrupted: str | None = None) -> None:
        from .render.junit import junit_xml

        with self.stream:
            self.stream.write(junit_xml(run, catalogue, namespace, origin, interrupted))

    def error(self, namespace: str | None, message: str) -> None:
        from .render.junit import junit_error_xml
        from .report import report_origin

        with self.stream:
            self.stream.write(junit_error_xml(namespace, report_origin(), message))


def _open_for_writing(path: str, flag: str):
    """Open an output file now: a bad path is a usage error before anything else happens."""
    try:
        return open(path, "wb")
    except OSError as exc:
        raise BadInput(f"cannot write {flag} {path}: {exc.strerror or exc}") from exc


def render_verify_output(run, catalogue, namespace: str, output: str, no_colour: bool, origin: dict | None = None,
                         interrupted: bool = False) -> str:
    if output in ("table", "short"):
        from .render.text import style_for
        from .render.verify import render_verify

        return render_verify(run, catalogue, namespace, style_for(sys.stdout, no_colour), short=output == "short",
                             interrupted=interrupted)
    from .render.structured import dump
    from .report import verify_report

    return dump(verify_report(run, namespace, origin, interrupted=interrupted), output)


def build_verify_options(*, client, probe_config, proxy_status_file, alpha: float, timeout_s: float,
                         parallel: int = 4, max_requests: int = 900):
    """Read and validate the files verify was given before anything touches the cluster."""
    from .checks.facts import VerifyOptions
    from .checks.probe_config import ProbeConfig, load_probe_config

    if not 0 < alpha < 1:
        raise BadInput(f"--alpha {alpha} is not between 0 and 1; the default is 0.001")
    text = None
    if proxy_status_file:
        try:
            with open(proxy_status_file, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"cannot read --proxy-status-file {proxy_status_file}: {getattr(exc, 'strerror', None) or exc}") from exc
        from .sync import parse_proxy_status

        parse_proxy_status(text, proxy_status_file)  # fail fast on a file that is not proxy-status output
    return VerifyOptions(client=client, alpha=alpha, timeout_s=timeout_s, parallel=parallel, max_requests=max_requests,
                         probe_config=load_probe_config(probe_config) if probe_config else ProbeConfig(),
                         proxy_status_file=proxy_status_file, proxy_status_text=text)


SCOPE_WORDS = {"cluster": "every namespace", "target": "the namespace checked", "control-plane": "istiod's namespace",
               "waypoint": "the waypoints' namespaces"}


def run_checks_list(output: str) -> int:
    """`kubectl waypoint checks`: the catalogue, with what each check needs (checks and permissions)."""
    from .checks.catalogue import load_catalogue
    from .kube.preflight import permissions_for

    catalogue = load_catalogue()
    rows = []
    for spec in catalogue.checks:
        permissions = [f"{p.verb} {p.rbac_resource} ({SCOPE_WORDS[p.scope]})"
                       for p in permissions_for("verify", [spec.id]) if spec.id in p.checks]
        rows.append({"id": spec.id, "category": spec.category, "proves": spec.title, "needsChecks": list(spec.needs),
                     "needsPermissions": permissions, "docs": spec.docs})
    if output == "table":
        from .render.text import table

        needs = [", ".join(row["needsChecks"] + row["needsPermissions"]) or "-" for row in rows]
        lines = table(["ID", "CATEGORY", "PROVES", "NEEDS"],
                      [[row["id"], row["category"], row["proves"], need] for row, need in zip(rows, needs)])
        click.echo("\n".join(lines) + "\n\nkubectl waypoint explain ID documents one check.")
    else:
        from .render.structured import dump

        click.echo(dump({"apiVersion": "kubectl-waypoint/v1", "kind": "CheckList", "checks": rows}, output), nl=False)
    return ExitCode.OK
