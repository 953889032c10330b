"""Shell completion through kubectl's plugin protocol (kubectl 1.26+).

On `kubectl waypoint ... <TAB>` kubectl runs `kubectl_complete-waypoint ARGS... WORD` from PATH
(WORD is what is being typed, "" for a new word) and reads cobra's format: one candidate per
line (`value<TAB>description`), then `:<directive>`. Candidates come from click's completion of
the real command tree; the values of the kubectl flags come from the kubeconfig and the cluster,
chosen by the flags already on the line, through a short-lived cache (completion_cache.py). A
flag value the cache holds is answered before click is even imported (completion_fast.py).
Nothing is printed on stderr: it lands in the prompt.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections import namedtuple
from collections.abc import Callable

PROG_NAME = "kubectl waypoint"
COMPLETION_TIMEOUT = "5s"  # a TAB that hangs is worse than a TAB that offers nothing

# cobra's ShellCompDirective bits
DIRECTIVE_DEFAULT = 0  # the shell may fall back to file names
DIRECTIVE_ERROR = 1
DIRECTIVE_NO_SPACE = 2
DIRECTIVE_NO_FILE_COMP = 4
DIRECTIVE_FILTER_DIRS = 16

CLIENT_KINDS = ("pod/", "deploy/")


class Answer(namedtuple("Answer", "candidates directive")):
    """What the shell gets: candidates (value, description) and how to treat them.

    A named tuple rather than a dataclass: the fast path must not pay for importing dataclasses.
    """

    __slots__ = ()

    def render(self) -> str:
        lines = [f"{value}\t{help}" if help else value for value, help in self.candidates]
        return "".join(f"{line}\n" for line in lines) + f":{self.directive}\n"


def answer_for(candidates: tuple[tuple[str, str], ...]) -> Answer:
    """Candidates to offer, no file names; no space after prefixes such as `deploy/` (typed on)."""
    directive = DIRECTIVE_NO_FILE_COMP
    if candidates and all(value.endswith("/") for value, _ in candidates):
        directive |= DIRECTIVE_NO_SPACE
    return Answer(candidates, directive)


def complete(cli, words: list[str]) -> Answer:
    """Complete the last of `words` (the arguments after `kubectl waypoint`) with click."""
    import click
    # click's own completion steps (what ShellComplete.get_completions runs), used directly so that
    # the line can be parsed again when it ends in an option still waiting for its value.
    from click.shell_completion import _resolve_context, _resolve_incomplete

    from .errors import WaypointError

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
    return answer_for(tuple((item.value, _one_line(item.help)) for item in items))


def _one_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


# -- values from the kubeconfig and the cluster: the same rules for the click path and the fast path --

Lookup = Callable[[str, "str | None"], list]  # lookup(kind, namespace or None for the target's) -> names


def matching(names, incomplete: str, prefix: str = "") -> list[str]:
    return [prefix + name for name in sorted(set(names)) if (prefix + name).startswith(incomplete)]


def names_of(kind: str) -> Callable[[Lookup, str], list[str]]:
    """The values are the names of one list: namespaces, or the kubeconfig's contexts, clusters, users."""
    return lambda lookup, incomplete: matching(lookup(kind, None), incomplete)


def route_values(lookup: Lookup, incomplete: str) -> list[str]:
    """--route [NS/]HTTPROUTE: the routes of -n's namespace, or of the namespace typed before `/`."""
    namespace, slash, _ = incomplete.rpartition("/")
    names = lookup("httproutes", namespace if slash else None)
    return matching(names, incomplete, f"{namespace}/" if slash else "")


def client_values(lookup: Lookup, incomplete: str) -> list[str]:
    """probe's CLIENT and verify's --client: bare pod names, pod/NAME, deploy/NAME."""
    if incomplete.startswith("deploy/"):
        return matching(lookup("deployments", None), incomplete, "deploy/")
    pods = lookup("pods", None)
    if incomplete.startswith("pod/"):
        return matching(pods, incomplete, "pod/")
    return matching(pods, incomplete) + [kind for kind in CLIENT_KINDS if kind.startswith(incomplete)]


# The parameters (by click name) whose values come from the kubeconfig or the cluster.
LOOKUP_VALUES = {
    "namespace": names_of("namespaces"),
    "context": names_of("contexts"),
    "cluster": names_of("clusters"),
    "user": names_of("users"),
    "route": route_values,
    "client": client_values,
}


# -- the click completers, attached to parameters by name -------------------------------------------

def _cluster_flags(ctx):
    from .kube.config import ClusterFlags

    timeout = ctx.params.get("request_timeout")
    return ClusterFlags.from_params(ctx.params, request_timeout=timeout if timeout not in (None, "", "0")
                                    else COMPLETION_TIMEOUT)


def _kubeconfig(ctx):
    """The merged kubeconfig the flags on the line select (no network)."""
    from .kube.config import load_merged_kubeconfig
    from .kubectl_files import kubeconfig_paths

    flags = _cluster_flags(ctx)
    paths = kubeconfig_paths(flags.kubeconfig, os.environ)
    return load_merged_kubeconfig(paths, explicit=bool(flags.kubeconfig))


def _connect(ctx):
    from .kube.client import Cluster
    from .kube.config import resolve_target

    return Cluster(resolve_target(_cluster_flags(ctx)))


def _lookup(ctx) -> Lookup:
    """Names through the cache; a miss reads the kubeconfig or asks the cluster, then stores the answer."""
    from .completion_cache import KUBECONFIG_KINDS, names_lookup
    from .kube.resources import DEPLOYMENTS, HTTPROUTES, NAMESPACES, PODS

    resources = {"namespaces": NAMESPACES, "httproutes": HTTPROUTES, "pods": PODS, "deployments": DEPLOYMENTS}
    connected = []

    def fetch(kind: str, namespace: str | None) -> list:
        if kind in KUBECONFIG_KINDS:
            return list(getattr(_kubeconfig(ctx), kind))
        if not connected:
            connected.append(_connect(ctx))
        cluster = connected[0]
        if kind == "namespaces":
            return cluster.list(NAMESPACES, transform=_name_of)
        return cluster.list(resources[kind], cluster.target.namespace if namespace is None else namespace,
                            transform=_name_of)

    return names_lookup(ctx.params, os.environ, fetch)


def _from_lookup(values: Callable[[Lookup, str], list[str]]):
    return lambda ctx, _param, incomplete: values(_lookup(ctx), incomplete)


def complete_files(_ctx, _param, incomplete):
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="file")]


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
    return matching([c.get("name", "") for c in containers if c.get("name")], incomplete)


def complete_check_names(_ctx, _param, incomplete):
    """--only/--skip CATEGORY|ID,...: the name after the last comma, the ones before kept."""
    from .checks.catalogue import load_catalogue

    catalogue = load_catalogue()
    done, comma, _ = incomplete.rpartition(",")
    names = [c.id for c in catalogue.categories] + [c.id for c in catalogue.checks]
    return matching(names, incomplete, done + comma)


def complete_check_ids(_ctx, _param, incomplete):
    from click.shell_completion import CompletionItem

    from .checks.catalogue import load_catalogue

    return [CompletionItem(c.id, help=c.title) for c in load_catalogue().checks if c.id.startswith(incomplete)]


def complete_scenarios(_ctx, _param, incomplete):
    from click.shell_completion import CompletionItem

    from .demo import demo_scenarios

    return [CompletionItem(name, help=description) for name, description in demo_scenarios()
            if name.startswith(incomplete)]


def complete_rbac_commands(_ctx, _param, incomplete):
    from .rbac import command_choices

    return matching(command_choices(), incomplete)


def _name_of(item: dict) -> str:
    return (item.get("metadata") or {}).get("name", "")


COMPLETERS = {
    "kubeconfig": complete_files,
    **{name: _from_lookup(values) for name, values in LOOKUP_VALUES.items()},
    "container": complete_containers,
    "only": complete_check_names,
    "skip": complete_check_names,
    "check_id": complete_check_ids,
    "command_name": complete_rbac_commands,
    "scenario": complete_scenarios,
}


def attach_completers(command) -> None:
    """Give every parameter named in COMPLETERS its completer, unless it has one of its own.

    This sets what `shell_complete=` would have set, so cli.py's option definitions stay as
    they are; probe's CLIENT argument and -c option are found by their names. Completers return
    plain strings where there is no description: click makes them CompletionItems.
    """
    for param in command.params:
        if param.name in COMPLETERS and param._custom_shell_complete is None:
            param._custom_shell_complete = COMPLETERS[param.name]
    for sub in getattr(command, "commands", {}).values():
        attach_completers(sub)


# -- entry points --------------------------------------------------------------------------------

def register(cli) -> None:
    """Attach the completers and add the hidden `__complete` command (cobra's name for it)."""
    import click

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
    """`kubectl_complete-waypoint`: what kubectl runs on TAB.

    A flag value the cache holds is answered without click or the CLI tree; anything else, and
    any doubt, goes through click as before.
    """
    from .completion_fast import fast_answer

    words = list(sys.argv[1:] if argv is None else argv)
    try:
        answer = fast_answer(words, os.environ)
    except Exception:  # a shortcut that fails must not cost the TAB its answer: click gives it
        answer = None
    if answer is None:
        from .__main__ import _restore_child_environment
        from .cli import cli

        _restore_child_environment()  # credential plugins run while completing namespaces, too
        warnings.simplefilter("ignore")  # a library warning would land in the prompt
        answer = complete(cli, words)
    sys.stdout.write(answer.render())
    return 0
