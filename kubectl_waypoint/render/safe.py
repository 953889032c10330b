"""The rendering boundary: text from the cluster is made harmless before it reaches a terminal.

Anything a user with edit rights in one namespace can write (a Gateway condition message, an
image reference, a label, istiod's output, a probed response body) could otherwise retitle the
operator's terminal, clear it, move the cursor, or reorder a line with bidi overrides to paint a
fake PASS. `safe` shows every such character in a visible escaped form instead. JSON and YAML
output keep the original strings (their encoders escape them).
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls; bidi marks, embeddings, overrides and isolates; line/paragraph
# separators. Anything else str.isprintable() rejects (format characters, unassigned) goes too.
_ALWAYS = "\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f" + _ALWAYS + "]")

BODY_LIMIT = 200  # characters of a cluster-supplied body (curl output, istiod's answer) shown in text output
LINE_LIMIT = 2000  # characters of any one message or evidence line in text output and JUnit


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def safe(value: object) -> str:
    """`value` as one terminal-safe line: control and bidi characters become `\\x1b`, `\\u202e`."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable() and not _UNSAFE.search(text):
        return text
    return "".join(_escaped(ch) if _UNSAFE.match(ch) or not (ch.isprintable() or ch == " ") else ch
                   for ch in text)


def cut(value: object, limit: int = BODY_LIMIT) -> str:
    """`safe(value)` of at most `limit` original characters, saying how many more were left out."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return safe(text)
    return f"{safe(text[:limit])}... ({len(text) - limit} more characters not shown)"
