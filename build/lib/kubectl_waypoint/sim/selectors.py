"""Label and field selectors with kube-apiserver's grammar (pure logic).

A parsed selector is a function from (labels, fields) to bool; a malformed one raises
`SelectorError` with a message shaped like the API server's, answered as 400 BadRequest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

Matcher = Callable[[Mapping[str, str]], bool]

_TOKEN = re.compile(r"\s*(==|!=|=|!|\(|\)|,|<|>|[^\s!=(),<>]+)")
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = re.compile(rf"({_NAME})?")
_KEY_NAME = re.compile(_NAME)
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class SelectorError(ValueError):
    """A selector kube-apiserver would reject with 400 BadRequest."""


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix))) or \
            len(name) > 63 or not _KEY_NAME.fullmatch(name):
        raise SelectorError(
            f'unable to parse requirement: key: Invalid value: "{key}": name part must consist of alphanumeric '
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character")


def _check_value(key: str, value: str) -> None:
    if len(value) > 63 or not _VALUE.fullmatch(value):
        raise SelectorError(
            f'unable to parse requirement: values[0][{key}]: Invalid value: "{value}": a valid label must be an '
            "empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
            "an alphanumeric character")


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SelectorError(f"unable to parse requirement: unexpected character at {text[pos:]!r}")
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


def parse_label_selector(text: str) -> Matcher:
    """`app=x,tier!=db,env in (a,b),!legacy` -> matcher over a labels mapping (AND of all)."""
    tokens = _tokens(text)
    requirements: list[Matcher] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise SelectorError("unable to parse requirement: found '', expected: identifier")
        i += 1
        return tokens[i - 1]

    def peek() -> str | None:
        return tokens[i] if i < len(tokens) else None

    while i < len(tokens):
        if peek() == "!":
            take()
            key = take()
            _check_key(key)
            requirements.append(lambda labels, k=key: k not in labels)
        else:
            key = take()
            _check_key(key)
            op = peek()
            if op in (None, ","):
                requirements.append(lambda labels, k=key: k in labels)
            elif op in ("=", "==", "!="):
                take()
                value = "" if peek() in (None, ",") else take()
                _check_value(key, value)
                if op == "!=":
                    requirements.append(lambda labels, k=key, v=value: labels.get(k) != v)
                else:
                    requirements.append(lambda labels, k=key, v=value: labels.get(k) == v)
            elif op in ("in", "notin"):
                take()
                if take() != "(":
                    raise SelectorError("unable to parse requirement: found '', expected: '('")
                values: set[str] = set()
                while True:
                    token = take()
                    if token == ")":
                        break
                    if token == ",":
                        continue
                    _check_value(key, token)
                    values.add(token)
                if op == "in":
                    if not values:
                        raise SelectorError("unable to parse requirement: values: Invalid value: []: for 'in', "
                                            "'notin' operators, values set can't be empty")
                    requirements.append(lambda labels, k=key, vs=frozenset(values): labels.get(k) in vs)
                else:
                    requirements.append(lambda labels, k=key, vs=frozenset(values): labels.get(k) not in vs)
            elif op in ("<", ">"):
                take()
                bound = take()
                if not re.fullmatch(r"-?[0-9]+", bound):
                    raise SelectorError(f'unable to parse requirement: values[0]: Invalid value: "{bound}": '
                                        "for 'Gt', 'Lt' operators, the value must be an integer")
                requirements.append(_numeric(key, op, int(bound)))
            else:
                raise SelectorError(f"unable to parse requirement: found '{op}', expected: in, notin, =, ==, !=, gt, "
                                    "lt")
        if i < len(tokens):
            if take() != ",":
                raise SelectorError(f"found '{tokens[i - 1]}', expected: ',' or 'end of string'")
            if i >= len(tokens):
                raise SelectorError("found '', expected: !, identifier, or 'end of string'")
    return lambda labels: all(r(labels) for r in requirements)


def _numeric(key: str, op: str, bound: int) -> Matcher:
    def match(labels: Mapping[str, str]) -> bool:
        value = labels.get(key)
        if value is None or not re.fullmatch(r"-?[0-9]+", value):
            return False
        return int(value) > bound if op == ">" else int(value) < bound
    return match


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_field_selector(text: str, supported: frozenset[str]) -> Matcher:
    """`metadata.name=x,status.phase!=Running` -> matcher over a fields mapping."""
    requirements: list[Matcher] = []
    if not text.strip():
        return lambda fields: True
    for term in _split_unescaped(text, ","):
        m = re.fullmatch(r"\s*([^=!\s]+)\s*(==|=|!=)(.*)", term)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = m.group(1), m.group(2), _unescape(m.group(3))
        if field not in supported:
            raise SelectorError(f'field label not supported: {field}')
        if op == "!=":
            requirements.append(lambda fields, f=field, v=value: fields.get(f, "") != v)
        else:
            requirements.append(lambda fields, f=field, v=value: fields.get(f, "") == v)
    return lambda fields: all(r(fields) for r in requirements)
