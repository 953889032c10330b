"""Strings that a route's regular expression matches in full, so a probe can hit a regex rule.

Envoy matches HTTPRoute `RegularExpression` paths, headers and query parameters with Google RE2,
against the whole value. The only regex engine at hand is Python's `re`, so a pattern is walked
with Python's own parser (`re._parser`, `sre_parse` before 3.11) and every example is confirmed
with `re.fullmatch` in ASCII mode (RE2's `\\d`, `\\w`, `\\s`, `\\b` are ASCII). Where the two engines
disagree the pattern is refused with the reason rather than guessed: RE2 rejects look-arounds,
back-references, atomic groups and possessive repeats (Istio would not accept such a route);
Python misreads POSIX classes (`[[:alpha:]]`) and `{,n}` (a repeat to Python, literal text to
RE2), and cannot parse RE2's `\\pL`, `\\Q...\\E`, `\\z` or `(?<name>...)`.

Why not a library: exrex is AGPL-3.0, rstr and xeger draw random strings, sre_yield enumerates
without a bound, and all of them walk the same parser with Python's semantics; none knows RE2.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

try:
    from re import _constants as sre_constants, _parser as sre_parse
except ImportError:  # Python 3.10
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

MAX_EXAMPLES = 8
MAX_CANDIDATES = 48  # partial strings kept while walking a pattern
MAX_RE2_REPEAT = 1000  # RE2 rejects a counted repeat above this
MAX_LENGTH = 2048  # longer examples are not worth sending (and nested repeats would exhaust memory)
# Characters tried for a class or `.`, best first: plain path characters, then any printable ASCII.
PREFERRED_CHARS = string.ascii_lowercase + string.digits + "-_" + string.ascii_uppercase + "~./"
PRINTABLE_CHARS = PREFERRED_CHARS + "".join(c for c in string.printable[:-5] if c not in PREFERRED_CHARS)

_POSIX_CLASS = re.compile(r"\[:\^?[a-z]+:\]")
_EMPTY_LOWER_BOUND = re.compile(r"(?<!\\)\{,\d*\}")
_RE2_REJECTS = {
    "ASSERT": "a look-around",
    "ASSERT_NOT": "a negative look-around",
    "GROUPREF": "a back-reference",
    "GROUPREF_EXISTS": "a conditional group",
    "GROUPREF_IGNORE": "a back-reference",
    "ATOMIC_GROUP": "an atomic group",
    "POSSESSIVE_REPEAT": "a possessive repeat",
}


class NoExample(Exception):
    """No string could be produced; `reason` says why, in words for a check's skip message."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def examples(pattern: str, allowed: Callable[[str], bool] = lambda s: True, limit: int = MAX_EXAMPLES) -> list[str]:
    """Up to `limit` distinct strings that `pattern` matches in full, in RE2 and Python alike, and
    that `allowed` accepts (shortest and plainest first); NoExample with the reason when none."""
    compiled = _re2_compatible(pattern)
    candidates = _walk(sre_parse.parse(pattern))
    found: list[str] = []
    for candidate in candidates:
        if candidate not in found and compiled.fullmatch(candidate) and allowed(candidate):
            found.append(candidate)
            if len(found) == limit:
                break
    if not found:
        raise NoExample(f"no request value could be generated for the regular expression {pattern!r}")
    return found


def _re2_compatible(pattern: str) -> re.Pattern[str]:
    """The pattern compiled with ASCII classes, or NoExample where RE2 and Python part ways."""
    if _POSIX_CLASS.search(pattern):
        raise NoExample(f"the regular expression {pattern!r} uses a POSIX class such as [[:alpha:]], "
                        "which Python's re reads differently from RE2")
    if _EMPTY_LOWER_BOUND.search(pattern):
        raise NoExample(f"the regular expression {pattern!r} uses {{,n}}, a repeat to Python but literal text "
                        "to RE2")
    try:
        compiled = re.compile(pattern, re.ASCII)
        tree = sre_parse.parse(pattern)
    except (re.error, ValueError, RecursionError) as exc:
        raise NoExample(f"the regular expression {pattern!r} uses syntax Python's re does not read ({exc})") \
            from None
    problem = _re2_rejects(tree)
    if problem:
        raise NoExample(f"the regular expression {pattern!r} uses {problem}, which RE2 (Envoy's engine) rejects")
    return compiled


def _re2_rejects(items) -> str | None:
    for op, arg in items:
        name = str(op)
        if name in _RE2_REJECTS:
            return _RE2_REJECTS[name]
        if op is sre_constants.AT and arg is sre_constants.AT_END_STRING:
            return "\\Z"
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, high, sub = arg
            if max(low, 0 if high is sre_constants.MAXREPEAT else high) > MAX_RE2_REPEAT:
                return f"a repeat count above {MAX_RE2_REPEAT}"
            found = _re2_rejects(sub)
        elif op is sre_constants.SUBPATTERN:
            found = _re2_rejects(arg[-1])
        elif op is sre_constants.BRANCH:
            found = next(filter(None, map(_re2_rejects, arg[1])), None)
        else:
            found = None
        if found:
            return found
    return None


def _walk(items) -> list[str]:
    """Candidate strings for a sequence of parsed items: every combination, capped, plain ones first."""
    partial = [""]
    for op, arg in items:
        options = _options(op, arg)
        partial = [head + tail for head in partial for tail in options
                   if len(head) + len(tail) <= MAX_LENGTH][:MAX_CANDIDATES]
        if not partial:
            return []
    return partial


def _options(op, arg) -> list[str]:
    if op is sre_constants.LITERAL:
        return [chr(arg)]
    if op is sre_constants.NOT_LITERAL:
        return _chars(lambda c: c != chr(arg))
    if op is sre_constants.ANY:
        return _chars(lambda c: c != "\n")
    if op is sre_constants.IN:
        return _chars(lambda c: _in_set(arg, c))
    if op is sre_constants.AT:
        return [""]  # anchors and boundaries: the final fullmatch decides
    if op is sre_constants.SUBPATTERN:
        return _walk(arg[-1])
    if op is sre_constants.BRANCH:
        alternatives = [_walk(branch) for branch in arg[1]]
        # interleaved, so that every alternative's plainest string comes early
        width = max(map(len, alternatives), default=0)
        return [a[i] for i in range(width) for a in alternatives if i < len(a)][:MAX_CANDIDATES]
    if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
        low, high, sub = arg
        inner = _walk(sub)[:2]
        counts = [low] + ([low + 1] if high is sre_constants.MAXREPEAT or high > low else [])
        return [piece * n for n in counts for piece in inner if len(piece) * n <= MAX_LENGTH] \
            if inner else ([""] if low == 0 else [])
    return []  # anything else was refused by _re2_rejects


def _chars(member: Callable[[str], bool]) -> list[str]:
    """Two characters in the set, plainest first."""
    return [c for c in PRINTABLE_CHARS if member(c)][:2]


def _in_set(items, char: str) -> bool:
    negate = False
    hit = False
    for op, arg in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            hit |= char == chr(arg)
        elif op is sre_constants.RANGE:
            hit |= arg[0] <= ord(char) <= arg[1]
        elif op is sre_constants.CATEGORY:
            hit |= _in_category(arg, char)
    return hit != negate


def _in_category(category, char: str) -> bool:
    kinds = {
        "CATEGORY_DIGIT": char in string.digits,
        "CATEGORY_SPACE": char in " \t\n\r\f\v",
        "CATEGORY_WORD": char.isascii() and (char.isalnum() or char == "_"),
    }
    name = str(category)
    if name.startswith("CATEGORY_NOT_"):
        return not kinds.get("CATEGORY_" + name[len("CATEGORY_NOT_"):], True)
    return kinds.get(name, False)
