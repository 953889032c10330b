"""Each command's flow: connect, gather, judge, render, and the exit code of the result."""

from __future__ import annotations

import sys

import click

from .errors import BadInput, ExitCode

RESULT_EXIT_CODES = {"pass": ExitCode.OK, "warn": ExitCode.OK, "fail": ExitCode.FAILED,
                     "inconclusive": ExitCode.INCONCLUSIVE}


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
        click.echo(f"warning: {warning}", err=True)


def skew_result(cluster, namespace: str | None):
    from .discovery import fetch_inventory
    from .skew import judge_inventory

    return judge_inventory(fetch_inventory(cluster, namespace))


def render_skew_output(result, output: str, no_colour: bool) -> str:
    if output == "table":
        from .render.skew import render_skew
        from .render.text import style_for

        return render_skew(result, style_for(sys.stdout, no_colour))
    from .render.structured import dump
    from .report import skew_report

    return dump(skew_report(result), output)


def run_skew(flags, *, all_namespaces: bool, output: str, no_colour: bool) -> int:
    cluster = connect(flags)
    namespace = cluster.target.namespace if flags.namespace and not all_namespaces else None
    result = skew_result(cluster, namespace)
    click.echo(render_skew_output(result, output, no_colour), nl=False)
    return RESULT_EXIT_CODES[result.result]


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
        text = f"waiting for {len(failing)} failing check(s) to pass ({', '.join(failing)}), {remaining_s:.0f}s left"
        self.stream.write(f"\r{text}" if self.tty else f"{text}\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def run_verify(flags, *, options, only: list[str], skip: list[str], wait_s: float, output: str,
               junit_file: str | None, no_colour: bool) -> int:
    from .checks.catalogue import load_catalogue
    from .checks.facts import VerifyFacts
    from .checks.judges import JUDGES
    from .checks.runner import run_until

    catalogue = load_catalogue()
    selected = catalogue.select(only, skip)
    junit = _open_for_writing(junit_file, "--junit-file") if junit_file else None
    cluster = connect(flags)
    namespace = cluster.target.namespace
    from .checks.runner import with_prerequisites

    warn_permissions(cluster, "verify", namespace, [spec.id for spec in with_prerequisites(catalogue, selected)])
    observer = WaitObserver(sys.stderr) if wait_s or sys.stderr.isatty() else None
    try:
        run = run_until(catalogue, selected, lambda: VerifyFacts(cluster, namespace, options), JUDGES, wait_s,
                        observer)
    finally:
        if observer:
            observer.done()
    if junit:
        from .render.junit import junit_xml

        with junit:
            junit.write(junit_xml(run, namespace))
    click.echo(render_verify_output(run, catalogue, namespace, output, no_colour), nl=False)
    return RESULT_EXIT_CODES[run.result]


def _open_for_writing(path: str, flag: str):
    """Open an output file before the run, so a bad path fails in a second, not after the probes."""
    try:
        return open(path, "wb")
    except OSError as exc:
        raise BadInput(f"cannot write {flag} {path}: {exc.strerror or exc}") from exc


def render_verify_output(run, catalogue, namespace: str, output: str, no_colour: bool) -> str:
    if output in ("table", "short"):
        from .render.text import style_for
        from .render.verify import render_verify

        return render_verify(run, catalogue, namespace, style_for(sys.stdout, no_colour), short=output == "short")
    from .render.structured import dump
    from .report import verify_report

    return dump(verify_report(run, namespace), output)


def build_verify_options(*, client, probe_config, proxy_status_file, alpha: float, timeout_s: float,
                         parallel: int = 4):
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
    return VerifyOptions(client=client, alpha=alpha, timeout_s=timeout_s, parallel=parallel,
                         probe_config=load_probe_config(probe_config) if probe_config else ProbeConfig(),
                         proxy_status_file=proxy_status_file, proxy_status_text=text)
