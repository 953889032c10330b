"""Plain-text building blocks: aligned tables and status colours (off when not a terminal)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence, TextIO

from .safe import safe

_COLOURS = {
    "ok": "32", "pass": "32",
    "warn": "33", "inconclusive": "33", "unknown": "33", "skip": "2",
    "fail": "31", "ahead": "31", "too-old": "31",
}


@dataclass(frozen=True)
class Style:
    colour: bool = False

    def status(self, text: str, status: str | None = None) -> str:
        code = _COLOURS.get(status or text)
        if not self.colour or not code:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"

    def bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self.colour else text


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """"1 warning", "2 warnings"."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"


def style_for(stream: TextIO, no_colour: bool) -> Style:
    """Colour only on a terminal, never with --no-color or NO_COLOR (https://no-color.org)."""
    if no_colour or os.environ.get("NO_COLOR"):
        return Style(False)
    isatty = getattr(stream, "isatty", None)
    return Style(bool(isatty and isatty()) and os.environ.get("TERM") != "dumb")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], painted: dict[int, Style] | None = None) -> list[str]:
    """Left-aligned columns separated by three spaces, like kubectl get; colour added after padding.

    Cells are cluster data: each is made terminal-safe here, before its width is measured.
    """
    rows = [[safe(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["   ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            padded = cell.ljust(widths[i]) if i < len(row) - 1 else cell
            if painted and i in painted:
                padded = painted[i].status(cell) + padded[len(cell):]
            cells.append(padded)
        lines.append("   ".join(cells).rstrip())
    return lines
