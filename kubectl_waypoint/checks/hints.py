"""A check's hint with the result's own names filled in, so the command in it can be pasted as is.

A catalogue hint may name `{namespace}` (the namespace verify checked), `{object_namespace}` and
`{object}` (the result's subject when it is NAMESPACE/NAME). Values are shell-quoted. A hint that
needs a name the result does not have points to `kubectl waypoint explain` instead.
"""

from __future__ import annotations

import re
import shlex

FIELD = re.compile(r"\{(namespace|object_namespace|object)\}")


def explain_command(check_id: str) -> str:
    """Where a check's documentation is, offline (the same text as docs/checks.md#<id>)."""
    return f"kubectl waypoint explain {check_id}"


def hint_fields(subject: str, namespace: str) -> dict[str, str]:
    fields = {"namespace": namespace, "object_namespace": namespace}
    owner, slash, name = subject.partition("/")
    if slash and owner and name and " " not in subject:
        fields.update(object_namespace=owner, object=name)
    return fields


def fill_hint(template: str, check_id: str, subject: str, namespace: str) -> str:
    fields = hint_fields(subject, namespace)
    if any(match.group(1) not in fields for match in FIELD.finditer(template)):
        return f"{explain_command(check_id)} says what to look at"
    return FIELD.sub(lambda match: shlex.quote(fields[match.group(1)]), template)


def hint_for(result, namespace: str) -> str:
    """The hint of one CheckResult."""
    return fill_hint(result.spec.hint, result.id, result.subject, namespace)
