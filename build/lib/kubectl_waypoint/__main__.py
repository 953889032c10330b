"""Entry point: run the CLI and turn every failure into one sentence and a documented exit code."""

from __future__ import annotations

import os
import sys
import traceback

from .errors import ExitCode, WaypointError


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


def printable(text: str) -> str:
    """One line with no terminal control characters: messages quote user input (names, durations)."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _wants_traceback(argv: list[str]) -> bool:
    return any(a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in argv)


def main(argv: list[str] | None = None) -> int:
    import click

    from .cli import cli

    _restore_child_environment()
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = _wants_traceback(args)
    try:
        result = cli.main(args=args, prog_name="kubectl waypoint", standalone_mode=False)
        return int(result or 0)
    except WaypointError as exc:
        if verbose:
            traceback.print_exc()
        click.echo(f"error: {printable(exc.message)}", err=True)
        return int(exc.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE if isinstance(exc, click.UsageError) else int(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("error: interrupted", err=True)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`); say nothing more, like other CLI tools.
        sys.stderr.close()
        return ExitCode.OK
    except Exception as exc:  # a bug: one line for the user, the traceback with -v
        if verbose:
            traceback.print_exc()
        click.echo(f"error: internal error: {type(exc).__name__}: {printable(str(exc))} "
                   "(this is a bug in kubectl-waypoint; rerun with -v and report it)", err=True)
        return ExitCode.FAILED


if __name__ == "__main__":
    sys.exit(main())
