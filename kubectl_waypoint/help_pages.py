"""`--help` without importing click: the pages click prints, rendered by click when the executable is built.

A help page depends on nothing but the command and the terminal's width, and click wraps it to
max(min(columns, 100) - 2, 50) characters: 49 widths give every page it can print. build/build.py
stores them all (`write_module`) as `_help_pages.py` in the single executable, where importing
click and the command tree would otherwise be most of a `--help` (about 40 ms of 90). A source
install has no stored pages and asks click, as does any line that is more than `[COMMAND] --help`.
"""

from __future__ import annotations

HELP_FLAGS = ("--help", "-h")
MIN_WIDTH, MAX_CONTENT_WIDTH = 50, 100  # click's HelpFormatter; cli.py's CONTEXT_SETTINGS
WIDTHS = range(MIN_WIDTH, MAX_CONTENT_WIDTH - 2 + 1)


def help_width() -> int:
    """The width click's HelpFormatter chooses for this terminal (COLUMNS, else stdout's size, else 80)."""
    import shutil

    return max(min(shutil.get_terminal_size().columns, MAX_CONTENT_WIDTH) - 2, MIN_WIDTH)


def stored_page(args: list[str]) -> str | None:
    """The stored page `args` asks for (`--help` or `-h`, alone or after a command name), or None."""
    if not 1 <= len(args) <= 2 or args[-1] not in HELP_FLAGS:
        return None
    command = args[0] if len(args) == 2 else ""
    if command.startswith("-"):  # an option before --help: click decides what it means
        return None
    try:
        from ._help_pages import PAGES  # only in the single executable
    except ImportError:
        return None
    packed = PAGES.get(command)
    if packed is None:
        return None
    import json
    import zlib

    return json.loads(zlib.decompress(packed))[help_width() - MIN_WIDTH]


def render_pages(cli) -> dict[str, bytes]:
    """Every visible command's help (and the group's, under ""), at every width, as click prints it."""
    import contextlib
    import io
    import json
    import zlib

    pages = {}
    for name in ["", *sorted(name for name, command in cli.commands.items() if not command.hidden)]:
        texts = []
        for width in WIDTHS:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                cli.main(args=[name, "--help"] if name else ["--help"], prog_name="kubectl waypoint",
                         standalone_mode=False, terminal_width=width)
            texts.append(printed.getvalue())
        pages[name] = zlib.compress(json.dumps(texts).encode(), 9)
    return pages


def write_module(path: str) -> None:
    """Write `_help_pages.py` for the executable (build/build.py runs this on the staged sources)."""
    from .cli import cli

    pages = render_pages(cli)
    with open(path, "w", encoding="utf-8") as stream:
        stream.write('"""Written by build/build.py: click\'s help pages at every width (help_pages.py)."""\n\n')
        stream.write("PAGES = {\n" + "".join(f"    {name!r}: {pages[name]!r},\n" for name in sorted(pages)) + "}\n")
