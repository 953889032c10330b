"""Typed errors carrying the exit codes of the interface; only the CLI turns them into output."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of the public interface (../shared/reference/interface.md)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    CLUSTER = 3
    INCONCLUSIVE = 4


class WaypointError(Exception):
    """A failure the user can meet: one sentence naming the object and the next step."""

    exit_code = ExitCode.FAILED

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadInput(WaypointError):
    """Malformed flag value, unreadable file, invalid expectation."""

    exit_code = ExitCode.USAGE


class ClusterUnavailable(WaypointError):
    """No kubeconfig or context, unreachable server, authentication or core permission failure."""

    exit_code = ExitCode.CLUSTER


class Inconclusive(WaypointError):
    """The command ran but could not decide (no usable client pod, too few samples)."""

    exit_code = ExitCode.INCONCLUSIVE


def kubectl_style(message: str) -> str:
    """One sentence as kubectl writes it: a lower-case start (acronyms and names such as HTTPRoute
    stay), no closing full stop."""
    first = message.split(" ", 1)[0]
    if len(first) > 1 and first[0].isupper() and first[1:].isalpha() and first[1:].islower():
        message = message[0].lower() + message[1:]
    return message[:-1] if message.endswith(".") and not message.endswith("..") else message
