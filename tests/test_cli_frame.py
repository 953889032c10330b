"""The CLI frame: help, version, usage errors, start-up cost and dispatch through the real kubectl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import kubectl_binary, one_line_error

SCRIPT_DIR = Path(sys.executable).parent


def test_help_says_kubectl_waypoint_and_lists_commands(run_cli):
    result = run_cli("--help")
    assert result.stdout.startswith("Usage: kubectl waypoint [OPTIONS] COMMAND")
    for command in ("skew", "demo", "version"):
        assert f"  {command} " in result.stdout


def test_version_text_and_json(run_cli):
    from kubectl_waypoint import __version__

    assert f"kubectl-waypoint v{__version__}" in run_cli("version").stdout
    doc = run_cli("version", "-o", "json").json
    assert doc["version"] == f"v{__version__}" and doc["commit"]


def test_unknown_flag_is_a_usage_error(run_cli):
    result = run_cli("skew", "--bogus", expect=2)
    assert one_line_error(result.stderr).startswith("error: no such option")


def test_bad_output_format_is_a_usage_error(run_cli):
    run_cli("skew", "-o", "xml", expect=2)


# What a command that talks to no cluster must not pay for: the cluster client stacks, TLS, the
# kubeconfig parser, and the traceback machinery only -v 9 prints.
HEAVY = ("kubernetes", "urllib3", "yaml", "ssl", "http.client", "traceback")


def _imports_after(args: list[str]) -> set[str]:
    code = (
        "import sys\n"
        f"HEAVY = {HEAVY!r}\n"
        "from kubectl_waypoint.__main__ import main\n"
        f"rc = main({args!r})\n"
        "print('\\nMODULES=' + ','.join(m for m in HEAVY if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    line = out.strip().splitlines()[-1]
    return set(filter(None, line.split("=", 1)[1].split(",")))


def test_help_and_version_import_no_cluster_client_tls_or_yaml():
    for args in (["--help"], ["version"], ["skew", "--help"], ["demo", "--help"], ["verify", "--help"]):
        assert _imports_after(args) == set(), args


def test_version_alone_is_answered_without_loading_the_command_tree(capsys):
    """`version` and `--version` print what click's `version` prints, without importing click."""
    from kubectl_waypoint.__main__ import main
    from kubectl_waypoint.cli import cli

    cli.main(args=["version"], prog_name="kubectl waypoint", standalone_mode=False)
    through_click = capsys.readouterr().out
    for args in (["version"], ["--version"]):
        assert main(args) == 0
        assert capsys.readouterr().out == through_click
    code = "import sys\nfrom kubectl_waypoint.__main__ import main\nmain(['version'])\nprint('click' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [through_click.rstrip("\n"), "False"]


def test_plugin_dispatch_through_real_kubectl(tmp_path):
    """kubectl finds kubectl-waypoint on PATH and passes the arguments through unchanged."""
    env = dict(os.environ, PATH=f"{SCRIPT_DIR}{os.pathsep}{os.environ['PATH']}", HOME=str(tmp_path))
    done = subprocess.run([kubectl_binary(), "waypoint", "version", "-o", "json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["kind"] == "Version"
    usage = subprocess.run([kubectl_binary(), "waypoint", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert "Usage: kubectl waypoint" in usage.stdout


def test_frozen_build_gives_children_the_users_library_path(monkeypatch):
    """PyInstaller points LD_LIBRARY_PATH at its bundle; credential plugins must get the user's."""
    from kubectl_waypoint.__main__ import _restore_child_environment

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/tmp/_MEI123")
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/opt/users-own-libs")
    _restore_child_environment()
    assert os.environ["LD_LIBRARY_PATH"] == "/opt/users-own-libs" and "LD_LIBRARY_PATH_ORIG" not in os.environ
    monkeypatch.setenv("LD_LIBRARY_PATH", "/tmp/_MEI123")
    _restore_child_environment()  # the user had none
    assert "LD_LIBRARY_PATH" not in os.environ


def test_error_line_escapes_control_characters_from_user_input(run_cli):
    result = run_cli("skew", "--request-timeout", "1\n\x1b[31mred", expect=2)
    (line,) = result.stderr.splitlines()
    assert "\\n" in line and "\x1b" not in line and "\\x1b[31mred" in line


def test_stored_help_pages_are_what_click_prints_at_every_terminal_width(capsys, monkeypatch):
    """The single executable answers `[COMMAND] --help` from pages click rendered at build time
    (help_pages.py); at any terminal width they must be exactly what click prints there."""
    import types

    from kubectl_waypoint.__main__ import main
    from kubectl_waypoint.cli import cli
    from kubectl_waypoint.help_pages import render_pages, stored_page

    pages = render_pages(cli)
    assert set(pages) == {"", *(name for name, command in cli.commands.items() if not command.hidden)}
    for columns in ("20", "52", "79", "100", "101", "250"):
        monkeypatch.setenv("COLUMNS", columns)
        for args in (["--help"], ["-h"], ["skew", "--help"], ["verify", "-h"], ["probe", "--help"]):
            monkeypatch.delitem(sys.modules, "kubectl_waypoint._help_pages", raising=False)
            cli.main(args=args, prog_name="kubectl waypoint", standalone_mode=False)
            by_click = capsys.readouterr().out
            assert stored_page(args) is None  # a source install stores no pages: click answers
            monkeypatch.setitem(sys.modules, "kubectl_waypoint._help_pages", types.SimpleNamespace(PAGES=pages))
            assert main(args) == 0
            assert capsys.readouterr().out == by_click, (columns, args)
    for args in (["--no-color", "--help"], ["skew", "-o", "json", "--help"], ["bogus", "--help"], ["--help", "x"]):
        assert stored_page(args) is None, args  # anything else on the line: click decides
