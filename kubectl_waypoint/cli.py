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
    """kubectl's global flags (genericclioptions), declared once for every cluster command.

    kubectl passes a plugin its arguments unchanged and refuses global flags before the plugin
    name, so a plugin must take them itself, with kubectl's spelling and meaning.
    """

    def decorate(command):
        options = [
            click.option("--kubeconfig", metavar="PATH", help="Path to the kubeconfig file to use."),
            click.option("--context", metavar="NAME", help="The kubeconfig context to use."),
            click.option("--cluster", metavar="NAME", help="The kubeconfig cluster to use."),
            click.option("--user", metavar="NAME", help="The kubeconfig user to use."),
            click.option("-n", "--namespace", metavar="NS",
                         help="Namespace (default: the context's namespace, else default)."),
            click.option("-s", "--server", metavar="URL", help="The address and port of the Kubernetes API server."),
            click.option("--token", metavar="TOKEN", help="Bearer token for authentication to the API server."),
            click.option("--as", "impersonate", metavar="USER",
                         help="Username to impersonate for the operation (a user or a service account)."),
            click.option("--as-group", "impersonate_groups", metavar="GROUP", multiple=True,
                         help="Group to impersonate for the operation (repeatable; needs --as)."),
            click.option("--as-uid", "impersonate_uid", metavar="UID", help="UID to impersonate (needs --as)."),
            click.option("--certificate-authority", metavar="PATH", help="Path to a cert file for the certificate authority."),
            click.option("--client-certificate", metavar="PATH", help="Path to a client certificate file for TLS."),
            click.option("--client-key", metavar="PATH", help="Path to a client key file for TLS."),
            click.option("--insecure-skip-tls-verify", is_flag=True,
                         help="Do not check the server's certificate (makes HTTPS insecure)."),
            click.option("--tls-server-name", metavar="NAME",
                         help="Server name for certificate validation and SNI (default: the server's host)."),
            click.option("--request-timeout", metavar="DURATION", default="0", show_default=True,
                         help="How long to wait for each API request (30s, 1m; 0 = no limit)."),
            click.option("--cache-dir", metavar="PATH",
                         help="kubectl's cache directory (default $KUBECACHEDIR, else ~/.kube/cache); "
                              "only shell completion keeps anything there."),
            click.option("--disable-compression", is_flag=True, help="Do not ask the server for compressed responses."),
        ]
        if all_namespaces:
            options.append(click.option("-A", "--all-namespaces", is_flag=True,
                                        help="Look in every namespace."))
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def pflag_args(args: list[str], params: list[click.Parameter]) -> list[str]:
    """kubectl's flag forms (spf13/pflag) click does not read: `-n=NS` and `--flag=true|false`."""
    short_values = {opt for param in params if isinstance(param, click.Option) and not param.is_flag
                    and not param.count for opt in param.opts + param.secondary_opts if len(opt) == 2}
    flags = {opt for param in params if isinstance(param, click.Option) and param.is_flag
             for opt in param.opts}
    result: list[str] = []
    for index, arg in enumerate(args):
        if arg == "--":
            return result + args[index:]
        name, equals, value = arg.partition("=")
        if equals and name in short_values:
            result += [name, value]
        elif equals and name in flags:
            if value.lower() not in ("1", "t", "true", "0", "f", "false"):
                raise click.UsageError(f'invalid argument "{value}" for "{name}" flag: '
                                       f'strconv.ParseBool: parsing "{value}": invalid syntax')
            result += [name] if value.lower() in ("1", "t", "true") else []
        else:
            result.append(arg)
    return result


class KubectlStyleCommand(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, pflag_args(args, self.get_params(ctx)))


class KubectlStyleGroup(click.Group):
    command_class = KubectlStyleCommand

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, pflag_args(args, self.get_params(ctx)))


def output_option(*formats: str):
    return click.option("-o", "--output", type=click.Choice(formats), default=formats[0], show_default=True,
                        help="Output format.")


def common_options(command):
    """-v and --no-color work before or after the command name."""
    command = click.option("-v", "--v", "verbosity", type=click.IntRange(min=0), expose_value=False,
                           callback=_remember_verbosity, metavar="N",
                           help="Log level as in kubectl: 4 debug log, 6 one line per API request, "
                                "9 also tracebacks of errors.")(command)
    command = click.option("--no-color", is_flag=True, expose_value=False, callback=_remember_no_color,
                           help="Plain output without colours (NO_COLOR is honoured too).")(command)
    return command


DEBUG_LEVEL, REQUESTS_LEVEL, TRACEBACK_LEVEL = 4, 6, 9


def _remember_verbosity(ctx: click.Context, _param, value: int | None) -> None:
    settings = ctx.ensure_object(dict)  # shared by the group and its command
    if value is not None:
        settings["verbosity"] = value
    _configure_logging(settings.get("verbosity", 0))


def _remember_no_color(ctx: click.Context, _param, value: bool) -> None:
    settings = ctx.ensure_object(dict)
    settings["no_color"] = settings.get("no_color", False) or value


def _configure_logging(level: int) -> None:
    """kubectl's -v levels: our debug log from 4, each API request from 6 (klog's line format).

    Run for every invocation, so handlers of an earlier in-process run never linger. Without -v
    and with `logging` not yet imported there is nothing to undo, and `--help`, `version` and a
    TAB need not import it (with traceback and the rest it brings).
    """
    if level < min(DEBUG_LEVEL, REQUESTS_LEVEL) and "logging" not in sys.modules:
        return
    import logging

    root, requests = logging.getLogger(), logging.getLogger("kubectl_waypoint.requests")
    for logger in (root, requests):
        for handler in [h for h in logger.handlers if getattr(h, "waypoint", False)]:
            logger.removeHandler(handler)
    requests.propagate = False
    requests.setLevel(logging.INFO if level >= REQUESTS_LEVEL else logging.WARNING)
    if level >= REQUESTS_LEVEL:
        requests.addHandler(_stderr_handler(_KlogFormatter()))
    if level >= DEBUG_LEVEL:
        root.addHandler(_stderr_handler(logging.Formatter("debug: %(name)s: %(message)s")))
        root.setLevel(logging.DEBUG)
        logging.getLogger("kubectl_waypoint.connections").setLevel(
            logging.DEBUG if level >= TRACEBACK_LEVEL else logging.INFO)


def _stderr_handler(formatter):
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.waypoint = True
    return handler


class _KlogFormatter:
    """`I1127 17:44:56.210280   27415 transport.py:160] GET https://... 200 OK in 2 milliseconds`."""

    def format(self, record) -> str:
        import datetime
        import os

        moment = datetime.datetime.fromtimestamp(record.created)
        return (f"I{moment:%m%d %H:%M:%S.%f} {os.getpid():>7} {record.filename}:{record.lineno}] "
                f"{record.getMessage()}")


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
    def wrapper(**kwargs):
        from dataclasses import fields

        from .kube.config import ClusterFlags

        names = {field.name for field in fields(ClusterFlags)}
        flags = ClusterFlags.from_params({name: kwargs.pop(name) for name in names if name in kwargs})
        return command(flags=flags, **kwargs)

    return wrapper


def emit(text: str) -> None:
    click.echo(text, nl=False)


def _print_version(ctx: click.Context, _param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from .buildinfo import build_info, version_line

        emit(version_line(build_info()))
        ctx.exit(ExitCode.OK)


@click.group(cls=KubectlStyleGroup, context_settings=CONTEXT_SETTINGS)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Print the plugin's version and commit, and exit.")
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
@cluster_options(all_namespaces=True)
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
@click.option("--max-requests", type=click.IntRange(100, 100000), default=900, show_default=True, metavar="N",
              help="Most requests one route's sequential split test may send before it is undecided.")
@common_options
@with_cluster_flags
def verify(flags, all_namespaces: bool, output: str, only, skip, wait: str, junit_file, client, probe_config,
           proxy_status_file, alpha: float, timeout: str, parallel: int, max_requests: int) -> int:
    """Run the post-upgrade checks for one namespace (or with -A every waypoint namespace).

    Each check ends pass, warn, fail, skip or inconclusive, with the evidence and a hint. Exit 0
    when nothing failed (warnings allowed), 1 when a check failed, 4 when something could not be
    decided (for example istiod's sync status could not be read).
    """
    from .checks.catalogue import split_names
    from .commands import build_verify_options, run_verify
    from .kube.config import parse_duration

    options = build_verify_options(client=client, probe_config=probe_config, proxy_status_file=proxy_status_file,
                                   alpha=alpha, timeout_s=parse_duration(timeout, "--timeout") or 5.0,
                                   parallel=parallel, max_requests=max_requests)
    if all_namespaces:
        from .commands import run_verify_fleet

        return run_verify_fleet(flags, options=options, only=split_names(only), skip=split_names(skip),
                                wait_s=parse_duration(wait, "--wait") or 0.0, output=output, junit_file=junit_file,
                                no_colour=_settings().get("no_color", False))
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
    from .buildinfo import build_info, version_line

    info = build_info()
    if output == "text":
        emit(version_line(info))
    else:
        from .render.structured import dump

        emit(dump(info, output))
    return ExitCode.OK


@cli.command(context_settings=CONTEXT_SETTINGS)
@output_option("table", "json", "yaml")
@common_options
def checks(output: str) -> int:
    """List every check of verify: id, category, what it proves, what it needs (no cluster needed)."""
    from .commands import run_checks_list

    return run_checks_list(output)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("check_id", metavar="CHECK_ID")
@common_options
def explain(check_id: str) -> int:
    """Print the documentation of one check (the same text as docs/checks.md; no network)."""
    from .checks.docs import explain as explain_check

    emit(explain_check(check_id))
    return ExitCode.OK


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("-n", "--namespace", metavar="NS",
              help="Grant the namespaced reads and exec in this namespace only (default: every namespace).")
@click.option("--command", "command_name", default="all", show_default=True, metavar="skew|verify|probe|watch|all",
              help="The command to grant (all: every command).")
@click.option("--control-plane-namespace", default="istio-system", show_default=True, metavar="NS",
              help="Where istiod runs (verify execs into it to read its sync status).")
@click.option("--user", "users", multiple=True, metavar="NAME", help="Bind the roles to this user (repeatable).")
@click.option("--group", "groups", multiple=True, metavar="NAME", help="Bind the roles to this group (repeatable).")
@click.option("--serviceaccount", "service_accounts", multiple=True, metavar="NS:NAME",
              help="Bind the roles to this service account (repeatable).")
@common_options
def rbac(namespace, command_name: str, control_plane_namespace: str, users, groups, service_accounts) -> int:
    """Print the least-privilege roles (and bindings, given a subject) as YAML for kubectl apply -f -.

    \b
    kubectl waypoint rbac --command verify -n bookinfo --serviceaccount ci:verifier | kubectl apply -f -
    """
    from .rbac import parse_subjects, rbac_documents, render_rbac

    subjects = parse_subjects(users, groups, service_accounts)
    emit(render_rbac(rbac_documents(command_name, namespace, subjects, control_plane_namespace)))
    if not subjects:
        click.echo("note: no --user, --group or --serviceaccount given, so no bindings were printed", err=True)
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
