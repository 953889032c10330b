"""Entry point: run the CLI and turn every failure into one sentence and a documented exit code."""

from __future__ import annotations

import os
import sys

from .errors import ExitCode, WaypointError, kubectl_style
from .render.safe import safe


def _restore_child_environment() -> None:
    """A PyInstaller one-file build points LD_LIBRARY_PATH at its bundle; children must not inherit it.

    Credential plugins (aws, gke-gcloud-auth-plugin) run as children and would load our libraries.
    """
    if not getattr(sys, "frozen", False):
        return
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)


def _print_traceback() -> None:
    """The traceback of -v 9; `traceback` (and linecache, tokenize) is imported only then."""
    import traceback

    traceback.print_exc()


def usage_sentence(exc) -> str:
    """click's usage error as one sentence in kubectl's style: lower case, then where to read more."""
    message = safe(exc.format_message())
    message = message[:1].lower() + message[1:]
    command = getattr(getattr(exc, "ctx", None), "command_path", None) or "kubectl waypoint"
    return f"{message.rstrip('.')}; see {command} --help"


def requested_verbosity(argv: list[str]) -> int:
    """The -v/--v level on the command line, in any of pflag's forms (the last one wins)."""
    level = 0
    args = iter(argv)
    for arg in args:
        if arg == "--":
            break
        if arg in ("-v", "--v"):
            value = next(args, "")
        elif arg.startswith(("-v=", "--v=")):
            value = arg.partition("=")[2]
        elif arg.startswith("-v") and arg[2:].isdigit():
            value = arg[2:]
        else:
            continue
        level = int(value) if value.isdigit() else level
    return level


# Lines that ask for the version and nothing else (scripts and support requests run them often):
# answered without importing click and the command tree. Any other word sends it through click.
VERSION_ONLY = (["version"], ["--version"])


def _static_answer(args: list[str]) -> str | None:
    """What `version` or a stored help page (help_pages.py) prints, known without click."""
    if args in VERSION_ONLY:
        from .buildinfo import build_info, version_line

        return version_line(build_info())
    from .help_pages import stored_page

    return stored_page(args)


def _print(text: str) -> int:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stderr.close()
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    answer = _static_answer(args)
    if answer is not None:
        return _print(answer)
    import click

    from .cli import cli

    _restore_child_environment()
    from .cli import TRACEBACK_LEVEL

    verbose = requested_verbosity(args) >= TRACEBACK_LEVEL
    try:
        result = cli.main(args=args, prog_name="kubectl waypoint", standalone_mode=False)
        return int(result or 0)
    except WaypointError as exc:
        if verbose:
            _print_traceback()
        click.echo(f"error: {safe(kubectl_style(exc.message))}", err=True)
        return int(exc.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {usage_sentence(exc)}", err=True)
        return ExitCode.USAGE if isinstance(exc, click.UsageError) else int(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("error: interrupted", err=True)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`); say nothing more, like other CLI tools.
        sys.stderr.close()
        return ExitCode.OK
    except Exception as exc:  # a bug: one line for the user, the traceback with -v 9
        if verbose:
            _print_traceback()
        click.echo(f"error: internal error: {type(exc).__name__}: {safe(str(exc))} "
                   "(this is a bug in kubectl-waypoint; rerun with -v 9 and report it)", err=True)
        return ExitCode.FAILED


if __name__ == "__main__":
    sys.exit(main())
