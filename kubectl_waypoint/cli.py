"""Click wiring: parse flags, call the core, render, return the exit code.

Nothing heavy is imported at module level: `--help` and `version` must start instantly, so the
`kubernetes` client and the simulated cluster are imported inside the commands that need them.
"""

from __future__ import annotations

import functools
import sys

import click

from .errors import ExitCode

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def cluster_options(all_namespaces: bool = True):
    """The kubectl flags every cluster command takes (kubectl passes them through unchanged)."""

    def decorate(command):
        options = [
            click.option("--kubeconfig", metavar="PATH", help="Path to the kubeconfig file to use."),
            click.option("--context", metavar="NAME", help="The kubeconfig context to use."),
            click.option("--cluster", metavar="NAME", help="The kubeconfig cluster to use."),
            click.option("--user", metavar="NAME", help="The kubeconfig user to use."),
            click.option("-n", "--namespace", metavar="NS",
                         help="Namespace (default: the context's namespace, else default)."),
            click.option("--request-timeout", metavar="DURATION", default="0", show_default=True,
                         help="How long to wait for each API request (30s, 1m; 0 = no limit)."),
        ]
        if all_namespaces:
            options.append(click.option("-A", "--all-namespaces", is_flag=True,
                                        help="Look in every namespace."))
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def output_option(*formats: str):
    return click.option("-o", "--output", type=click.Choice(formats), default=formats[0], show_default=True,
                        help="Output format.")


def common_options(command):
    """-v and --no-color work before or after the command name."""
    command = click.option("-v", "--verbose", count=True, expose_value=False, callback=_remember_verbose,
                           help="Debug log on stderr and tracebacks on errors.")(command)
    command = click.option("--no-color", is_flag=True, expose_value=False, callback=_remember_no_color,
                           help="Plain output without colours (NO_COLOR is honoured too).")(command)
    return command


def _remember_verbose(ctx: click.Context, _param, value: int) -> None:
    settings = ctx.ensure_object(dict)
    settings["verbose"] = settings.get("verbose", 0) + value
    if value:
        _configure_logging(settings["verbose"])


def _remember_no_color(ctx: click.Context, _param, value: bool) -> None:
    settings = ctx.ensure_object(dict)
    settings["no_color"] = settings.get("no_color", False) or value


def _configure_logging(level: int) -> None:
    import logging

    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="debug: %(name)s: %(message)s", force=True)
    logging.getLogger("urllib3").setLevel(logging.INFO if level < 2 else logging.DEBUG)


def _settings() -> dict:
    ctx = click.get_current_context()
    merged: dict = {}
    while ctx is not None:
        for key, value in (ctx.obj or {}).items():
            merged.setdefault(key, value)
        ctx = ctx.parent
    return merged


def with_cluster_flags(command):
    """Bundle the kubectl flags into one ClusterFlags argument named `flags`."""

    @functools.wraps(command)
    def wrapper(kubeconfig, context, cluster, user, namespace, request_timeout, **kwargs):
        from .kube.config import ClusterFlags

        flags = ClusterFlags(kubeconfig=kubeconfig, context=context, cluster=cluster, user=user,
                             namespace=namespace, request_timeout=request_timeout)
        return command(flags=flags, **kwargs)

    return wrapper


def emit(text: str) -> None:
    click.echo(text, nl=False)


@click.group(context_settings=CONTEXT_SETTINGS)
@common_options
def cli() -> None:
    """Check that Istio ambient waypoints, ztunnel and istio-cni came through an upgrade intact.

    \b
    Start here without a cluster:   kubectl waypoint demo
    Version skew of the whole mesh: kubectl waypoint skew
    """


@cli.command(context_settings=CONTEXT_SETTINGS)
@cluster_options(all_namespaces=True)
@output_option("table", "json", "yaml")
@click.option("--target-version", metavar="VERSION",
              help="Judge an upgrade of the control plane to VERSION: what it would break and what must move first.")
@common_options
@with_cluster_flags
def skew(flags, all_namespaces: bool, output: str, target_version: str | None) -> int:
    """Judge every waypoint, ztunnel and istio-cni workload against its control plane.

    The n-1 rule: a data-plane component may run the control plane's minor version or one minor
    behind, never ahead. Without -n, all namespaces are checked. With --target-version, the
    cluster is judged as it would be with its control plane at VERSION: exit 0 when the upgrade
    can go ahead, 1 when something blocks it.
    """
    from .commands import run_skew

    return run_skew(flags, all_namespaces=all_namespaces, output=output, no_colour=_settings().get("no_color", False),
                    target_version=target_version)


@cli.command(context_settings=CONTEXT_SETTINGS)
@cluster_options(all_namespaces=False)
@output_option("table", "short", "json", "yaml")
@click.option("--only", multiple=True, metavar="CATEGORY|ID,...",
              help="Run only these categories or checks (control-plane, waypoints, proxy-status, skew, routing, "
                   "authorization, or check ids).")
@click.option("--skip", multiple=True, metavar="CATEGORY|ID,...", help="Leave out these categories or checks.")
@click.option("--wait", "wait", default="0", metavar="DURATION", show_default=True,
              help="Retry failing checks until they pass or this much time has passed (e.g. 2m).")
@click.option("--junit-file", metavar="PATH", help="Also write the results as JUnit XML (one testcase per check).")
@click.option("--client", metavar="[NS/]pod/NAME|deploy/NAME",
              help="Client pod for the routing and authorization probes (default: chosen automatically).")
@click.option("--probe-config", metavar="FILE", help="YAML describing routing and authorization probes explicitly.")
@click.option("--proxy-status-file", metavar="FILE",
              help="Saved output of istioctl proxy-status, where exec into istiod is not allowed.")
@click.option("--alpha", type=float, default=0.001, show_default=True,
              help="Significance level of the routing split test.")
@click.option("--timeout", "timeout", default="5s", show_default=True, metavar="DURATION",
              help="Timeout of each probe request.")
@click.option("--parallel", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Routing and authorization probes run at once (each is one exec session).")
@common_options
@with_cluster_flags
def verify(flags, output: str, only, skip, wait: str, junit_file, client, probe_config, proxy_status_file,
           alpha: float, timeout: str, parallel: int) -> int:
    """Run the post-upgrade checks for one namespace: control plane, waypoints, sync, skew, L7.

    Each check ends pass, warn, fail, skip or inconclusive, with the evidence and a hint. Exit 0
    when nothing failed (warnings allowed), 1 when a check failed, 4 when something could not be
    decided (for example istiod's sync status could not be read).
    """
    from .checks.catalogue import split_names
    from .commands import build_verify_options, run_verify
    from .kube.config import parse_duration

    options = build_verify_options(client=client, probe_config=probe_config, proxy_status_file=proxy_status_file,
                                   alpha=alpha, timeout_s=parse_duration(timeout, "--timeout") or 5.0,
                                   parallel=parallel)
    return run_verify(flags, options=options, only=split_names(only), skip=split_names(skip),
                      wait_s=parse_duration(wait, "--wait") or 0.0, output=output, junit_file=junit_file,
                      no_colour=_settings().get("no_color", False))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("client", metavar="CLIENT")
@click.argument("url", metavar="URL")
@cluster_options(all_namespaces=False)
@click.option("-c", "--container", metavar="NAME",
              help="Container to send from (default: the pod's first container that is not a proxy).")
@click.option("--count", type=int, metavar="N",
              help="Requests to send (default: enough for the split test's power; 50 for status checks).")
@click.option("--expect-split", metavar="NAME=WEIGHT,...",
              help="Expected traffic split by backend name (unset weight = 1, 0 = no traffic).")
@click.option("--route", metavar="[NS/]HTTPROUTE", help="Read the expected split from this HTTPRoute's backendRefs.")
@click.option("--match", metavar="REGEX",
              help="What in a response names the backend (first capture group); default: any backend name.")
@click.option("--expect-status", metavar="CODE", help="Every request must get this HTTP status (default: any 2xx).")
@click.option("--expect-denied", is_flag=False, flag_value="any", default=None, metavar="[=l7|l4|any]",
              help="Every request must be denied: l7 (403 RBAC: access denied), l4 (reset) or any.")
@click.option("--method", default="GET", show_default=True, metavar="METHOD", help="HTTP method.")
@click.option("-H", "--header", "headers", multiple=True, metavar="'NAME: VALUE'", help="Extra header (repeatable).")
@click.option("--timeout", default="5s", show_default=True, metavar="DURATION", help="Limit for each request.")
@click.option("--alpha", type=float, default=0.001, show_default=True,
              help="Significance of the split test: the chance to fail a correct split.")
@click.option("--duration", metavar="DURATION", help="Continuous mode: keep probing this long (Ctrl-C ends early).")
@click.option("--interval", metavar="DURATION", help="Continuous mode: one request this often (default 1s).")
@click.option("--min-availability", type=float, default=1.0, show_default=True,
              help="Share of requests that must be answered as expected.")
@output_option("table", "json", "yaml")
@common_options
@with_cluster_flags
def probe(flags, output: str, **options) -> int:
    """Send requests from CLIENT to URL through the mesh and judge them.

    CLIENT is pod/NAME, deploy/NAME or a pod name in -n's namespace. Each request uses a new
    connection; the command runs as an argument vector, never through a shell.

    \b
    Split:      kubectl waypoint probe -n curl deploy/curl http://productpage.bookinfo:9080/productpage \\
                  --route bookinfo/reviews
    Denied:     kubectl waypoint probe -n bookinfo deploy/ratings-v1 http://productpage:9080/productpage \\
                  --expect-denied=l7
    Continuous: kubectl waypoint probe -n curl deploy/curl http://reviews.bookinfo:9080/reviews/0 \\
                  --duration 5m --interval 1s --min-availability 0.99
    """
    from .probe.command import ProbeOptions, run_probe_command

    return run_probe_command(flags, ProbeOptions(**options), output=output,
                             no_colour=_settings().get("no_color", False))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--scenario", default="bookinfo", show_default=True, metavar="NAME",
              help="Simulated cluster to start (see --list-scenarios).")
@click.option("--list-scenarios", is_flag=True, help="List the simulated scenarios and exit.")
@click.option("--serve", is_flag=True, help="Keep the simulated cluster running and print the kubeconfig to use.")
@click.option("--watch", "watch_upgrade", is_flag=True,
              help="Run `watch` through a whole simulated upgrade (under a minute).")
@output_option("table", "json", "yaml")
@common_options
def demo(scenario: str, list_scenarios: bool, serve: bool, watch_upgrade: bool, output: str) -> int:
    """Run the checks against a built-in simulated ambient cluster on loopback."""
    from .demo import list_demo_scenarios, run_demo, serve_demo, watch_demo

    if watch_upgrade:
        return watch_demo(output=output, no_colour=_settings().get("no_color", False))
    if list_scenarios:
        emit(list_demo_scenarios())
        return ExitCode.OK
    if serve:
        return serve_demo(scenario)
    return run_demo(scenario, output=output, no_colour=_settings().get("no_color", False))


@cli.command(context_settings=CONTEXT_SETTINGS)
@output_option("text", "json", "yaml")
@common_options
def version(output: str) -> int:
    """Print the plugin's own version."""
    from .buildinfo import build_info

    info = build_info()
    if output == "text":
        emit(f"kubectl-waypoint {info['version']} (commit {info['commit']}, {info['python']})\n")
    else:
        from .render.structured import dump

        emit(dump(info, output))
    return ExitCode.OK


@cli.command(context_settings=CONTEXT_SETTINGS)
@cluster_options(all_namespaces=False)
@click.option("--target-version", metavar="VERSION",
              help="Done when every component runs VERSION (default: when all run one version, rollouts finished).")
@click.option("--timeout", "timeout", default="30m", show_default=True, metavar="DURATION",
              help="Give up (exit 4) when the upgrade has not finished by then.")
@click.option("--max-outage", metavar="DURATION",
              help="Fail (exit 1) when a route failed for longer than this (default: outages are only reported).")
@click.option("--interval", default="1s", show_default=True, metavar="DURATION",
              help="One probe request per route this often.")
@click.option("--report", "report_file", metavar="FILE.html",
              help="Also write a self-contained HTML timeline of the upgrade.")
@output_option("table", "json", "yaml")
@common_options
@with_cluster_flags
def watch(flags, target_version: str | None, timeout: str, max_outage: str | None, interval: str,
          report_file: str | None, output: str) -> int:
    """Follow a live upgrade: versions as they roll, outages as they happen, verify at the end.

    Watches istiod, istio-cni, ztunnel and the namespace's waypoints (the watch API, no polling),
    probes the namespace's routes and authorization policies continuously, and prints each change
    with the time since start.
    Exit 0 when the upgrade finished and the final verify passed, 1 when verify failed or an
    outage exceeded --max-outage, 4 at --timeout. Ctrl-C prints the report so far.
    """
    from .watch import run_watch, watch_settings

    settings_for, options = watch_settings(target_version=target_version, timeout=timeout, max_outage=max_outage,
                                           interval=interval)
    return run_watch(flags, settings_for=settings_for, output=output, report_file=report_file,
                     no_colour=_settings().get("no_color", False), verify_options=options)


# kubectl's plugin completion protocol: a hidden `__complete` command; completers attach by parameter name.
from .completion import register as register_completion  # noqa: E402  (needs every command defined above)

register_completion(cli)
