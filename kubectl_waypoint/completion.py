"""Shell completion through kubectl's plugin protocol (kubectl 1.26+).

On `kubectl waypoint ... <TAB>` kubectl runs `kubectl_complete-waypoint ARGS... WORD` from PATH
(WORD is what is being typed, "" for a new word) and reads cobra's format: one candidate per
line (`value<TAB>description`), then `:<directive>`. Candidates come from click's completion of
the real command tree; the values of the kubectl flags come from the kubeconfig and the cluster,
chosen by the flags already on the line. Nothing is printed on stderr: it lands in the prompt.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass

import click
# click's own completion steps (what ShellComplete.get_completions runs), used directly so that
# the line can be parsed again when it ends in an option still waiting for its value.
from click.shell_completion import CompletionItem, _resolve_context, _resolve_incomplete

from .errors import WaypointError

PROG_NAME = "kubectl waypoint"
COMPLETION_TIMEOUT = "5s"  # a TAB that hangs is worse than a TAB that offers nothing

# cobra's ShellCompDirective bits
DIRECTIVE_DEFAULT = 0  # the shell may fall back to file names
DIRECTIVE_ERROR = 1
DIRECTIVE_NO_SPACE = 2
DIRECTIVE_NO_FILE_COMP = 4
DIRECTIVE_FILTER_DIRS = 16

CLIENT_KINDS = ("pod/", "deploy/")


@dataclass(frozen=True)
class Answer:
    """What the shell gets: candidates with their descriptions, and how to treat them."""

    candidates: tuple[tuple[str, str], ...]
    directive: int

    def render(self) -> str:
        lines = [f"{value}\t{help}" if help else value for value, help in self.candidates]
        return "".join(f"{line}\n" for line in lines) + f":{self.directive}\n"


def complete(cli: click.Command, words: list[str]) -> Answer:
    """Complete the last of `words` (the arguments after `kubectl waypoint`)."""
    attach_completers(cli)
    args, incomplete = list(words[:-1]), words[-1] if words else ""
    try:
        ctx = _resolve_context(cli, {}, PROG_NAME, args)
        target, incomplete = _resolve_incomplete(ctx, args, incomplete)
        if isinstance(target, click.Option) and args and args[-1] in target.opts:
            # click stops parsing at an option without its value: parse the line without it, so
            # that everything else on it is known (probe's CLIENT when completing -c).
            ctx = _resolve_context(cli, {}, PROG_NAME, args[:-1])
        items = target.shell_complete(ctx, incomplete)
    except WaypointError:
        return Answer((), DIRECTIVE_ERROR)
    if any(item.type == "file" for item in items):
        return Answer((), DIRECTIVE_DEFAULT)
    if any(item.type == "dir" for item in items):
        return Answer((), DIRECTIVE_FILTER_DIRS)
    candidates = tuple((item.value, _one_line(item.help)) for item in items)
    directive = DIRECTIVE_NO_FILE_COMP
    if candidates and all(value.endswith("/") for value, _ in candidates):
        directive |= DIRECTIVE_NO_SPACE  # `deploy/` is a prefix to go on typing, not a word
    return Answer(candidates, directive)


def _one_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


# -- the completers, attached to parameters by name -------------------------------------------------

def _cluster_flags(ctx: click.Context):
    from .kube.config import ClusterFlags

    timeout = ctx.params.get("request_timeout")
    return ClusterFlags.from_params(ctx.params, request_timeout=timeout if timeout not in (None, "", "0")
                                    else COMPLETION_TIMEOUT)


def _kubeconfig(ctx: click.Context):
    """The merged kubeconfig the flags on the line select (no network)."""
    from .kube.config import kubeconfig_paths, load_merged_kubeconfig

    flags = _cluster_flags(ctx)
    paths = kubeconfig_paths(flags.kubeconfig, os.environ, os.environ.get("HOME") or os.path.expanduser("~"))
    return load_merged_kubeconfig(paths, explicit=bool(flags.kubeconfig))


def _connect(ctx: click.Context):
    from .kube.client import Cluster
    from .kube.config import resolve_target

    return Cluster(resolve_target(_cluster_flags(ctx)))


def _names(items, incomplete: str, prefix: str = "") -> list[CompletionItem]:
    return [CompletionItem(prefix + name) for name in sorted(set(items)) if (prefix + name).startswith(incomplete)]


def complete_contexts(ctx, _param, incomplete):
    return _names(_kubeconfig(ctx).contexts, incomplete)


def complete_clusters(ctx, _param, incomplete):
    return _names(_kubeconfig(ctx).clusters, incomplete)


def complete_users(ctx, _param, incomplete):
    return _names(_kubeconfig(ctx).users, incomplete)


def complete_files(_ctx, _param, incomplete):
    return [CompletionItem(incomplete, type="file")]


def complete_namespaces(ctx, _param, incomplete):
    from .kube.resources import NAMESPACES

    return _names(_connect(ctx).list(NAMESPACES, transform=_name_of), incomplete)


def complete_clients(ctx, _param, incomplete):
    """probe's CLIENT: bare pod names, pod/NAME, deploy/NAME."""
    from .kube.resources import DEPLOYMENTS, PODS

    cluster = _connect(ctx)
    namespace = cluster.target.namespace
    if incomplete.startswith("deploy/"):
        return _names(cluster.list(DEPLOYMENTS, namespace, transform=_name_of), incomplete, "deploy/")
    pods = cluster.list(PODS, namespace, transform=_name_of)
    if incomplete.startswith("pod/"):
        return _names(pods, incomplete, "pod/")
    return _names(pods, incomplete) + [CompletionItem(kind) for kind in CLIENT_KINDS if kind.startswith(incomplete)]


def complete_containers(ctx, _param, incomplete):
    """-c: the containers of the CLIENT already on the line."""
    from .kube.resources import DEPLOYMENTS, PODS

    client = ctx.params.get("client")
    if not client:
        return []
    kind, _, name = client.rpartition("/")
    cluster = _connect(ctx)
    if kind == "deploy":
        spec = (cluster.get(DEPLOYMENTS, name, cluster.target.namespace).get("spec") or {}).get("template") or {}
    elif kind in ("", "pod"):
        spec = cluster.get(PODS, name, cluster.target.namespace)
    else:
        return []
    containers = (spec.get("spec") or {}).get("containers") or []
    return _names([c.get("name", "") for c in containers if c.get("name")], incomplete)


def complete_routes(ctx, _param, incomplete):
    """--route [NS/]HTTPROUTE: the routes of -n's namespace, or of the namespace typed before `/`."""
    from .kube.resources import HTTPROUTES

    cluster = _connect(ctx)
    namespace, slash, _ = incomplete.rpartition("/")
    names = cluster.list(HTTPROUTES, namespace if slash else cluster.target.namespace, transform=_name_of)
    return _names(names, incomplete, f"{namespace}/" if slash else "")


def complete_check_names(_ctx, _param, incomplete):
    """--only/--skip CATEGORY|ID,...: the name after the last comma, the ones before kept."""
    from .checks.catalogue import load_catalogue

    catalogue = load_catalogue()
    done, comma, _ = incomplete.rpartition(",")
    names = [c.id for c in catalogue.categories] + [c.id for c in catalogue.checks]
    return _names(names, incomplete, done + comma)


def complete_check_ids(_ctx, _param, incomplete):
    from .checks.catalogue import load_catalogue

    return [CompletionItem(c.id, help=c.title) for c in load_catalogue().checks if c.id.startswith(incomplete)]


def complete_scenarios(_ctx, _param, incomplete):
    from .demo import demo_scenarios

    return [CompletionItem(name, help=description) for name, description in demo_scenarios()
            if name.startswith(incomplete)]


def complete_rbac_commands(_ctx, _param, incomplete):
    from .rbac import command_choices

    return _names(command_choices(), incomplete)


def _name_of(item: dict) -> str:
    return (item.get("metadata") or {}).get("name", "")


COMPLETERS = {
    "kubeconfig": complete_files,
    "context": complete_contexts,
    "cluster": complete_clusters,
    "user": complete_users,
    "namespace": complete_namespaces,
    "client": complete_clients,
    "container": complete_containers,
    "route": complete_routes,
    "only": complete_check_names,
    "skip": complete_check_names,
    "check_id": complete_check_ids,
    "command_name": complete_rbac_commands,
    "scenario": complete_scenarios,
}


def attach_completers(command: click.Command) -> None:
    """Give every parameter named in COMPLETERS its completer, unless it has one of its own.

    This sets what `shell_complete=` would have set, so cli.py's option definitions stay as
    they are; probe's CLIENT argument and -c option are found by their names.
    """
    for param in command.params:
        if param.name in COMPLETERS and param._custom_shell_complete is None:
            param._custom_shell_complete = COMPLETERS[param.name]
    for sub in getattr(command, "commands", {}).values():
        attach_completers(sub)


# -- entry points --------------------------------------------------------------------------------

def register(cli: click.Group) -> None:
    """Attach the completers and add the hidden `__complete` command (cobra's name for it)."""
    attach_completers(cli)
    if "__complete" in cli.commands:
        return

    @cli.command("__complete", hidden=True, add_help_option=False,
                 context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    @click.argument("words", nargs=-1, type=click.UNPROCESSED)
    def _complete_command(words: tuple[str, ...]) -> int:
        """Print completions for the words after `kubectl waypoint` (the last is being typed)."""
        click.echo(complete(cli, list(words)).render(), nl=False)
        return 0


def main(argv: list[str] | None = None) -> int:
    """`kubectl_complete-waypoint`: what kubectl runs on TAB."""
    from .__main__ import _restore_child_environment
    from .cli import cli

    _restore_child_environment()  # credential plugins run while completing namespaces, too
    warnings.simplefilter("ignore")  # e.g. urllib3's InsecureRequestWarning would land in the prompt
    words = list(sys.argv[1:] if argv is None else argv)
    sys.stdout.write(complete(cli, words).render())
    return 0
