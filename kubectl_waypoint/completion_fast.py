"""Answer a TAB on a flag value from the cache, without importing click, YAML or the `kubernetes` client.

Most TABs complete `-n`, `--context`, `--route` or probe's CLIENT on a plain line. This reads such
a line the way click would (each command's options as data below; a test holds them equal to
cli.py's) and answers from completion_cache.py with the same value rules as the click path
(completion.LOOKUP_VALUES). Anything unusual, an unknown option, `--`, a value that looks like a
flag, pflag's `-n=NS`, an option whose value is optional, or a cache miss, returns None and the
click path answers as before: a line is better answered slowly than wrongly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from .completion import LOOKUP_VALUES, Answer, answer_for
from .completion_cache import Miss, names_lookup


class Grammar:
    """One command's options: those taking one value and flags, by option string -> click name."""

    __slots__ = ("values", "flags", "arguments")

    def __init__(self, values: dict[str, str], flags: dict[str, str], arguments: tuple[str, ...] = ()):
        self.values, self.flags, self.arguments = values, flags, arguments


# Options that may be given more than once; their values add up (click's multiple=True).
MULTIPLE = frozenset({"impersonate_groups", "only", "skip", "headers", "users", "groups", "service_accounts"})

_CLUSTER_VALUES = {
    "--kubeconfig": "kubeconfig", "--context": "context", "--cluster": "cluster", "--user": "user",
    "-n": "namespace", "--namespace": "namespace", "-s": "server", "--server": "server", "--token": "token",
    "--as": "impersonate", "--as-group": "impersonate_groups", "--as-uid": "impersonate_uid",
    "--certificate-authority": "certificate_authority", "--client-certificate": "client_certificate",
    "--client-key": "client_key", "--tls-server-name": "tls_server_name", "--request-timeout": "request_timeout",
    "--cache-dir": "cache_dir",
}
_CLUSTER_FLAGS = {"--insecure-skip-tls-verify": "insecure_skip_tls_verify",
                  "--disable-compression": "disable_compression"}
_COMMON_VALUES = {"-v": "verbosity", "--v": "verbosity", "-o": "output", "--output": "output"}
_COMMON_FLAGS = {"--no-color": "no_color", "-h": "help", "--help": "help"}
_ALL_NAMESPACES = {"-A": "all_namespaces", "--all-namespaces": "all_namespaces"}

GRAMMARS = {
    "skew": Grammar({**_CLUSTER_VALUES, **_COMMON_VALUES, "--target-version": "target_version"},
                    {**_CLUSTER_FLAGS, **_COMMON_FLAGS, **_ALL_NAMESPACES}),
    "verify": Grammar({**_CLUSTER_VALUES, **_COMMON_VALUES, "--only": "only", "--skip": "skip", "--wait": "wait",
                       "--junit-file": "junit_file", "--client": "client", "--probe-config": "probe_config",
                       "--proxy-status-file": "proxy_status_file", "--alpha": "alpha", "--timeout": "timeout",
                       "--parallel": "parallel", "--max-requests": "max_requests"},
                      {**_CLUSTER_FLAGS, **_COMMON_FLAGS, **_ALL_NAMESPACES}),
    # --expect-denied is left out on purpose: its value is optional, so a line with it is declined.
    "probe": Grammar({**_CLUSTER_VALUES, **_COMMON_VALUES, "-c": "container", "--container": "container",
                      "--count": "count", "--expect-split": "expect_split", "--route": "route", "--match": "match",
                      "--expect-status": "expect_status", "--method": "method", "-H": "headers",
                      "--header": "headers", "--timeout": "timeout", "--alpha": "alpha", "--tolerance": "tolerance",
                      "--max-requests": "max_requests", "--max-unmatched": "max_unmatched", "--duration": "duration",
                      "--interval": "interval", "--min-availability": "min_availability"},
                     {**_CLUSTER_FLAGS, **_COMMON_FLAGS}, arguments=("client", "url")),
    "watch": Grammar({**_CLUSTER_VALUES, **_COMMON_VALUES, "--target-version": "target_version",
                      "--timeout": "timeout", "--max-outage": "max_outage", "--interval": "interval",
                      "--report": "report_file"},
                     {**_CLUSTER_FLAGS, **_COMMON_FLAGS}),
    "rbac": Grammar({"-n": "namespace", "--namespace": "namespace", "--command": "command_name",
                     "--control-plane-namespace": "control_plane_namespace", "--user": "users", "--group": "groups",
                     "--serviceaccount": "service_accounts", "-v": "verbosity", "--v": "verbosity"},
                    _COMMON_FLAGS),
}


class Line:
    """What a completion line asks for: the parameter whose value is typed, and the words around it."""

    __slots__ = ("param", "incomplete", "params")

    def __init__(self, param: str, incomplete: str, params: dict[str, object]):
        self.param, self.incomplete, self.params = param, incomplete, params


def read_line(words: list[str]) -> Line | None:
    """The parameter being completed and the parameters click would see; None at any doubt.

    As click's completion does: `--flag=VALUE` being typed completes VALUE; a last complete word
    that is an option completes its value, and the line is read without it; else the first
    positional argument not given yet.
    """
    if len(words) < 2 or "--" in words or words[0] not in GRAMMARS:
        return None
    grammar, before, incomplete = GRAMMARS[words[0]], words[1:-1], words[-1]
    if incomplete.startswith("-"):
        name, equals, incomplete = incomplete.partition("=")
        if not equals or name not in grammar.values or incomplete.startswith("-"):
            return None  # click completes option names here
        param = grammar.values[name]
    elif incomplete == "=":
        return None
    elif before and before[-1] in grammar.values:
        param, before = grammar.values[before[-1]], before[:-1]
    else:
        param = None
    parsed = _parse(grammar, before)
    if parsed is None:
        return None
    params, positionals = parsed
    if param is None:
        if len(positionals) >= len(grammar.arguments):
            return None
        param = grammar.arguments[len(positionals)]
    return Line(param, incomplete, params)


def _parse(grammar: Grammar, words: list[str]) -> tuple[dict[str, object], list[str]] | None:
    """Complete words into click's parameter values and the positional words, or None when unsure."""
    params: dict[str, object] = {}
    positionals: list[str] = []
    rest = iter(words)
    for word in rest:
        if not word.startswith("-"):
            positionals.append(word)
            continue
        name, equals, value = word.partition("=")
        if equals:
            if not name.startswith("--") or name not in grammar.values:
                return None  # pflag's -n=NS and --flag=false are rewritten by cli.pflag_args: leave them to it
        elif word in grammar.flags:
            params[grammar.flags[word]] = True
            continue
        elif word in grammar.values:
            value = next(rest, None)
            if value is None or value.startswith("-"):
                return None
        else:
            return None  # unknown to us: maybe new in cli.py, maybe an error; click decides
        param = grammar.values[name]
        params[param] = params.get(param, ()) + (value,) if param in MULTIPLE else value
    if len(positionals) > len(grammar.arguments):
        return None
    return params, positionals


def fast_answer(words: list[str], environ: Mapping[str, str],
                clock: Callable[[], float] = time.time) -> Answer | None:
    """The answer from the cache for a flag value on a plain line, else None (ask click)."""
    line = read_line(words)
    values = LOOKUP_VALUES.get(line.param) if line else None
    if values is None:
        return None
    try:
        found = values(names_lookup(line.params, environ, clock=clock), line.incomplete)
    except Miss:
        return None
    return answer_for(tuple((value, "") for value in found))
