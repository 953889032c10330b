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
@common_options
@with_cluster_flags
def skew(flags, all_namespaces: bool, output: str) -> int:
    """Judge every waypoint, ztunnel and istio-cni workload against its control plane.

    The n-1 rule: a data-plane component may run the control plane's minor version or one minor
    behind, never ahead. Without -n, all namespaces are checked.
    """
    from .commands import run_skew

    return run_skew(flags, all_namespaces=all_namespaces, output=output, no_colour=_settings().get("no_color", False))


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
              help="Exactly N requests, a split judged by an equivalence test (default: a split is tested "
                   "sequentially until decided; 50 for status checks).")
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
              help="Chance to fail a correct split (and a good availability or match rate).")
@click.option("--tolerance", type=float, default=0.10, show_default=True,
              help="How far a backend's share may be off its weight (0 to 0.5).")
@click.option("--max-requests", type=int, default=450, show_default=True, metavar="N",
              help="Cap of the sequential split test: undecided by then is inconclusive.")
@click.option("--max-unmatched", type=float, default=0.05, show_default=True,
              help="Share of answered requests that may name no backend.")
@click.option("--duration", metavar="DURATION", help="Continuous mode: keep probing this long (Ctrl-C ends early).")
@click.option("--interval", metavar="DURATION", help="Continuous mode: one request this often (default 1s).")
@click.option("--min-availability", type=float, default=None,
              help="Share of requests the mesh must answer: a split judged by a bound (default 0.99), "
                   "other probes per request (default 1.0).")
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
@output_option("table", "json", "yaml")
@common_options
def demo(scenario: str, list_scenarios: bool, serve: bool, output: str) -> int:
    """Run the checks against a built-in simulated ambient cluster on loopback."""
    from .demo import list_demo_scenarios, run_demo, serve_demo

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


# kubectl's plugin completion protocol: a hidden `__complete` command; completers attach by parameter name.
from .completion import register as register_completion  # noqa: E402  (needs every command defined above)

register_completion(cli)
