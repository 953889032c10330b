"""The completion cache and the fast path: a repeated TAB is answered from kubectl's cache directory.

Against the simulated clusters over HTTPS; requests are counted on them. Time is controlled by
setting an entry's mtime (its age), never by sleeping.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_waypoint import completion_cache
from kubectl_waypoint.cli import cli
from kubectl_waypoint.completion import DIRECTIVE_ERROR, complete, main
from kubectl_waypoint.completion_cache import FOLDER, TTL_SECONDS, cache_folder, kubeconfig_paths
from kubectl_waypoint.completion_fast import GRAMMARS, MULTIPLE, fast_answer, read_line
from kubectl_waypoint.kube import config as kube_config
from kubectl_waypoint.sim import SimCluster


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    """Two clusters, Bookinfo (context `book`, namespace bookinfo) and Sail (context `sail`), and their kubeconfigs."""
    folder = tmp_path_factory.mktemp("clusters")
    with SimCluster("bookinfo", tls=True) as book, SimCluster("sail", tls=True) as sail:
        book_config = book.write_kubeconfig(str(folder / "book"), context="book", namespace="bookinfo")
        sail_config = sail.write_kubeconfig(str(folder / "sail"), context="sail")
        yield {"book": book, "sail": sail, "book_config": book_config, "sail_config": sail_config,
               "both": f"{book_config}{os.pathsep}{sail_config}"}


@pytest.fixture
def both(clusters, monkeypatch):
    """KUBECONFIG naming both files (current context: book); request logs emptied."""
    monkeypatch.setenv("KUBECONFIG", clusters["both"])
    for sim in (clusters["book"], clusters["sail"]):
        sim.clear_requests()
    return clusters


def tab(capsys, *words: str) -> list[str]:
    """What kubectl_complete-waypoint prints for these words, run in this process (fast path included)."""
    capsys.readouterr()
    assert main(list(words)) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out.splitlines()


def entries(folder) -> list[str]:
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if not name.startswith("."))


def default_folder() -> str:
    return cache_folder(None, os.environ)


# -- what the cache saves -------------------------------------------------------------------------------

def test_a_second_tab_within_the_ttl_does_not_reach_the_server_and_one_after_it_does(both, capsys):
    book = both["book"]
    first = tab(capsys, "verify", "-n", "")
    assert "bookinfo" in first and first[-1] == ":4"
    assert len(book.requests) == 1
    assert tab(capsys, "verify", "-n", "") == first
    assert tab(capsys, "skew", "--namespace", "") == first  # another command, the same cluster and identity
    assert len(book.requests) == 1
    [entry] = entries(default_folder())
    fetched = os.stat(entry).st_mtime
    os.utime(entry, (fetched - TTL_SECONDS - 1, fetched - TTL_SECONDS - 1))  # the answer is now too old
    assert tab(capsys, "verify", "-n", "") == first
    assert len(book.requests) == 2


def test_routes_and_clients_are_cached_per_namespace(both, capsys):
    book = both["book"]
    assert tab(capsys, "probe", "--route", "") == ["reviews", ":4"]  # the context's namespace, bookinfo
    assert tab(capsys, "probe", "--route", "bookinfo/") == ["bookinfo/reviews", ":4"]
    assert tab(capsys, "probe", "-n", "curl", "--route", "") == [":4"]
    pods = tab(capsys, "probe", "")
    assert "deploy/" in pods and any(p.startswith("productpage-") for p in pods)
    asked = len(book.requests)
    assert asked == 4
    assert tab(capsys, "probe", "--route", "re") == ["reviews", ":4"]
    assert tab(capsys, "probe", "--route", "bookinfo/r") == ["bookinfo/reviews", ":4"]
    assert tab(capsys, "probe", "pod/product")[0].startswith("pod/productpage-")
    assert len(book.requests) == asked


def test_contexts_need_no_second_read_of_the_kubeconfig_until_it_changes(both, capsys, monkeypatch, tmp_path):
    config = tmp_path / "config"
    config.write_text(open(both["sail_config"], encoding="utf-8").read())
    monkeypatch.setenv("KUBECONFIG", f"{both['book_config']}{os.pathsep}{config}")
    assert tab(capsys, "skew", "--context", "") == ["book", "sail", ":4"]
    reads = []
    original = kube_config.load_kubeconfig_file
    monkeypatch.setattr(kube_config, "load_kubeconfig_file", lambda path: reads.append(path) or original(path))
    assert tab(capsys, "skew", "--context", "s") == ["sail", ":4"]
    assert reads == []
    config.write_text(config.read_text().replace("sail", "renamed"))  # an edit: the next TAB reads again
    assert tab(capsys, "skew", "--context", "") == ["book", "renamed", ":4"]
    assert len(reads) == 2


# -- never another cluster's or identity's answer ----------------------------------------------------------

def test_another_context_gets_its_own_clusters_answer(both, capsys):
    book_namespaces = tab(capsys, "verify", "-n", "")
    sail_namespaces = tab(capsys, "verify", "--context", "sail", "-n", "")
    assert "ztunnel" in sail_namespaces and "ztunnel" not in book_namespaces
    assert len(both["sail"].requests) == 1
    assert tab(capsys, "verify", "--context", "book", "-n", "") == book_namespaces


def test_an_edited_kubeconfig_never_gets_the_old_clusters_answer(clusters, capsys, tmp_path, monkeypatch):
    config = str(tmp_path / "config")
    clusters["book"].write_kubeconfig(config, context="same")
    monkeypatch.setenv("KUBECONFIG", config)
    assert "ztunnel" not in tab(capsys, "verify", "-n", "")
    before = os.stat(config)
    clusters["sail"].write_kubeconfig(config, context="same")  # the same file now points at another cluster
    os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))  # even with the old mtime
    clusters["sail"].clear_requests()
    assert "ztunnel" in tab(capsys, "verify", "-n", "")
    assert len(clusters["sail"].requests) == 1


def test_another_identity_never_gets_the_cached_answer(both, capsys):
    book = both["book"]
    book.tokens["someone-elses-token"] = "mallory"
    book.deny("list", "namespaces", user="mallory")
    assert "bookinfo" in tab(capsys, "verify", "-n", "")
    assert tab(capsys, "verify", "--token", "someone-elses-token", "-n", "") == [f":{DIRECTIVE_ERROR}"]
    assert tab(capsys, "verify", "--as", "mallory", "-n", "") == [f":{DIRECTIVE_ERROR}"]
    assert [r.status for r in book.requests] == [200, 403, 403]


# -- the files -----------------------------------------------------------------------------------------------

def test_cache_files_are_private_and_hold_no_token(both, capsys):
    tab(capsys, "verify", "-n", "")
    tab(capsys, "verify", "--token", "token-on-the-line", "-n", "")
    tab(capsys, "skew", "--context", "")
    folder = default_folder()
    assert folder == os.path.join(os.environ["HOME"], ".kube", "cache", FOLDER)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert len(entries(folder)) == 2  # the failed TAB (unknown token) left nothing
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        content = open(path, encoding="utf-8").read()
        for secret in (both["book"].token, both["sail"].token, "token-on-the-line"):
            assert secret not in content and secret not in name


@pytest.mark.parametrize("damage", ["garbage", "cut short", "another key", "group writable", "symlink"])
def test_a_damaged_or_foreign_entry_is_ignored_and_replaced(both, capsys, damage):
    good = tab(capsys, "verify", "-n", "")
    [entry] = entries(default_folder())
    text = open(entry, encoding="utf-8").read()
    if damage == "garbage":
        open(entry, "wb").write(b"\xff\xfe not ours\n")
    elif damage == "cut short":
        open(entry, "w", encoding="utf-8").write(text[:-3])
    elif damage == "another key":
        open(entry, "w", encoding="utf-8").write(text.replace(os.path.basename(entry), "0" * 64))
    elif damage == "group writable":
        os.chmod(entry, 0o620)
    else:
        planted = entry + ".planted"
        open(planted, "w", encoding="utf-8").write(text)
        os.replace(planted, entry + ".target")
        os.symlink(entry + ".target", entry + ".link")
        os.replace(entry + ".link", entry)
    assert tab(capsys, "verify", "-n", "") == good
    assert len(both["book"].requests) == 2
    assert tab(capsys, "verify", "-n", "") == good
    assert len(both["book"].requests) == 2  # the entry was written anew


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_an_entry_owned_by_another_user_is_ignored(both, capsys):
    good = tab(capsys, "verify", "-n", "")
    [entry] = entries(default_folder())
    os.chown(entry, 4242, -1)
    assert tab(capsys, "verify", "-n", "") == good
    assert len(both["book"].requests) == 2


def test_an_unwritable_cache_directory_still_completes(both, capsys, tmp_path, monkeypatch):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv("KUBECACHEDIR", str(not_a_folder))
    first = tab(capsys, "verify", "-n", "")
    assert "bookinfo" in first
    assert tab(capsys, "verify", "-n", "") == first
    assert len(both["book"].requests) == 2


def test_the_cache_directory_follows_kubectls_rule(both, capsys, tmp_path, monkeypatch):
    home = os.environ["HOME"]
    assert cache_folder(None, {"HOME": home}) == os.path.join(home, ".kube", "cache", FOLDER)
    assert cache_folder(None, {"HOME": home, "KUBECACHEDIR": ""}) == os.path.join(home, ".kube", "cache", FOLDER)
    assert cache_folder(None, {"HOME": home, "KUBECACHEDIR": "/k"}) == os.path.join("/k", FOLDER)
    assert cache_folder("/flag", {"HOME": home, "KUBECACHEDIR": "/k"}) == os.path.join("/flag", FOLDER)
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path / "env"))
    tab(capsys, "verify", "--cache-dir", str(tmp_path / "flag"), "-n", "")
    tab(capsys, "verify", "-n", "")
    assert len(entries(tmp_path / "flag" / FOLDER)) == 1 and len(entries(tmp_path / "env" / FOLDER)) == 1
    assert not os.path.exists(os.path.join(home, ".kube"))


def test_old_entries_are_pruned_when_a_new_one_is_written(both, capsys):
    tab(capsys, "verify", "-n", "")
    [old] = entries(default_folder())
    long_ago = time.time() - completion_cache.PRUNE_AFTER_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    tab(capsys, "skew", "--context", "")
    assert old not in entries(default_folder()) and len(entries(default_folder())) == 1


def test_kubeconfig_paths_are_kubectls(tmp_path):
    """The cache keys on the files the loader reads (one function serves both): client-go's rule."""
    home = str(tmp_path)
    default = [os.path.join(home, ".kube", "config")]
    for explicit, environ, expected in [
            (None, {}, default), ("/x/k", {"KUBECONFIG": "/a"}, ["/x/k"]),
            (None, {"KUBECONFIG": f"/a{os.pathsep}/b"}, ["/a", "/b"]),
            (None, {"KUBECONFIG": f"/a{os.pathsep}{os.pathsep}/a{os.pathsep}/c"}, ["/a", "/c"]),
            (None, {"KUBECONFIG": ""}, default), (None, {"KUBECONFIG": os.pathsep}, [])]:
        assert kubeconfig_paths(explicit, {**environ, "HOME": home}) == expected, environ
    assert completion_cache.kubeconfig_paths is kube_config.kubeconfig_paths


# -- the fast path -----------------------------------------------------------------------------------------

FAST_LINES = [
    ["verify", "-n", ""], ["verify", "--namespace", "b"], ["skew", "-A", "--namespace=ist"], ["skew", "-n=de"],
    ["verify", "--context", "sail", "-n", ""], ["probe", "--route", ""], ["probe", "--route", "bookinfo/"],
    ["probe", "-n", "curl", "--route", ""], ["probe", "--route=re"], ["probe", ""], ["probe", "deploy/r"],
    ["probe", "-n", "bookinfo", "pod/"], ["verify", "--client", "deploy/"], ["skew", "--context", ""],
    ["watch", "--cluster", ""], ["skew", "--user", "s"], ["rbac", "-n", ""], ["verify", "-o", "json", "-n", ""],
    ["verify", "--only", "routing", "--skip", "skew", "-n", "i"], ["probe", "-H", "x: y", "--route", ""],
    ["probe", "--kubeconfig", "{sail}", "-n", ""], ["verify", "--insecure-skip-tls-verify", "-n", ""],
    ["verify", "--as", "x", "--as-group", "a", "--as-group", "b", "--context=sail", "-n", "k"],
    ["verify", "--request-timeout", "10s", "-n", ""], ["verify", "--request-timeout=0", "-n", ""],
]
DECLINED_LINES = [
    ["verify", "-n", "--"], ["verify", "--", "-n", ""], ["verify", "-"], ["verify", "--na"], ["verify", "-n", "-x"],
    ["verify", "--context", "-n", ""], ["verify", "-x", "-n", ""], ["verify", "-n=a", "--route", ""],
    ["probe", "--expect-denied", "-n", ""], ["probe", "a", "b", ""], ["probe", "a", ""], ["verify", ""],
    ["verify", "-o", ""], ["probe", "-c", ""], ["rbac", "--user", ""], ["demo", "--scenario", ""], [""],
    ["-v", "6", "verify", "-n", ""], ["verify", "--insecure-skip-tls-verify=false", "-n", ""], ["verify", "="],
    ["verify", "-n"], ["verify", "stray", "-n", ""], ["verify", "--kubeconfig", ""],
    ["verify", "--request-timeout", "nonsense", "-n", ""],  # an error click reports, not hidden by the cache
]


def _words(line: list[str], clusters) -> list[str]:
    return [word.replace("{sail}", clusters["sail_config"]) for word in line]


def _uncached(words: list[str], monkeypatch, folder) -> tuple:
    """The click path's answer with no cache to read or write: the truth to compare with."""
    with monkeypatch.context() as patch:
        patch.setenv("KUBECACHEDIR", str(folder / "no-cache"))
        (folder / "no-cache").write_text("")  # a file: the cache can neither be read nor written
        return complete(cli, words)


@pytest.mark.parametrize("line", FAST_LINES, ids=" ".join)
def test_the_fast_path_answers_what_click_answers(both, line, monkeypatch, tmp_path):
    words = _words(line, both)
    truth = _uncached(words, monkeypatch, tmp_path)
    assert fast_answer(words, os.environ) is None  # nothing cached yet
    assert complete(cli, words) == truth  # the click path, filling the cache
    assert fast_answer(words, os.environ) == truth


@pytest.mark.parametrize("line", DECLINED_LINES, ids=" ".join)
def test_the_fast_path_leaves_unusual_lines_to_click(both, line, capsys):
    for warm in (["verify", "-n", ""], ["probe", "--route", ""], ["probe", ""], ["skew", "--context", ""]):
        tab(capsys, *warm)
    assert read_line(line) is None or fast_answer(line, os.environ) is None


TOKENS = st.sampled_from([
    ["-n", "bookinfo"], ["-n", "curl"], ["--namespace=istio-system"], ["-n="], ["--context", "sail"],
    ["--context=book"], ["--context", "nowhere"], ["--kubeconfig", "{sail}"], ["-A"], ["--insecure-skip-tls-verify"],
    ["-o", "json"], ["--only", "routing"], ["--as-group", "g"], ["--", "x"], ["pod/x"], ["--expect-denied"],
    ["-c", "c"], ["--route", "reviews"], ["--user", "book"], ["--cluster", "sail"], ["-v", "2"], ["--count", "-1"],
    ["--request-timeout", "nonsense"], ["--request-timeout", "0"], ["--as", "x"],
])
LAST = st.sampled_from([
    ["-n", ""], ["-n", "b"], ["--namespace=i"], ["--context", ""], ["--context", "s"], ["--cluster", ""],
    ["--user", ""], ["--route", ""], ["--route", "bookinfo/"], ["--route=r"], ["--client", "deploy/"], [""],
    ["deploy/"], ["pod/r"], ["-"], ["--n"], ["-n", "-"], ["--as", ""],
])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["skew", "verify", "probe", "watch", "rbac", "demo"]),
       middle=st.lists(TOKENS, max_size=4), last=LAST)
def test_the_fast_path_never_contradicts_click(both, monkeypatch, tmp_path_factory, command, middle, last):
    """Any line: after the click path filled the cache for it and for others, the fast path gives
    click's answer or stays out of it."""
    words = _words([command, *[word for token in middle for word in token], *last], both)
    folder = tmp_path_factory.mktemp("fast")
    monkeypatch.setenv("KUBECACHEDIR", str(folder / "cache"))
    truth = _uncached(words, monkeypatch, folder)
    for warm in (["verify", "-n", ""], ["probe", "--route", ""], ["probe", ""], ["skew", "--context", ""],
                 ["verify", "--context", "sail", "-n", ""], words):
        complete(cli, warm)
    answer = fast_answer(words, os.environ)
    assert answer is None or answer == truth


def test_the_option_tables_are_cli_pys():
    """Every option the fast path knows takes a value, or not, exactly as in cli.py, under the same name."""
    for name, grammar in GRAMMARS.items():
        command = cli.commands[name]
        ctx = click.Context(command)
        params, help_option = command.get_params(ctx), command.get_help_option(ctx)
        options = {opt: param for param in params if isinstance(param, click.Option)
                   for opt in param.opts + param.secondary_opts}
        for opt, param_name in grammar.values.items():
            param = options[opt]
            assert param.name == param_name and not param.is_flag and not param.count and param.nargs == 1, opt
            assert not param._flag_needs_value, f"{opt}: its value is optional, leave it out of the table"
            assert param.multiple == (param_name in MULTIPLE), opt
        for opt, param_name in grammar.flags.items():
            assert options[opt].is_flag and (options[opt].name == param_name or options[opt] is help_option), opt
        assert grammar.arguments == tuple(p.name for p in params if isinstance(p, click.Argument)), name
    cluster_options = {opt for opt, param in ((o, p) for p in cli.commands["skew"].params
                                              if isinstance(p, click.Option) for o in p.opts)
                       if param.name in completion_cache.CONNECTION_PARAMS}
    assert cluster_options <= set(GRAMMARS["skew"].values) | set(GRAMMARS["skew"].flags)


def test_a_failing_shortcut_still_gets_the_tab_its_answer(both, capsys, monkeypatch):
    from kubectl_waypoint import completion_fast

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug in the fast path")

    monkeypatch.setattr(completion_fast, "fast_answer", broken)
    assert "bookinfo" in tab(capsys, "verify", "-n", "")


HIT_MODULES = "click yaml kubernetes urllib3 ssl http.client kubectl_waypoint.cli kubectl_waypoint.kube".split()


def _modules_after_a_tab(words: list[str]) -> tuple[list[str], list[str]]:
    program = ("import json, sys\nfrom kubectl_waypoint.completion import main\nmain(sys.argv[1:])\n"
               f"print(json.dumps([m for m in {HIT_MODULES!r} if m in sys.modules]))\n")
    result = subprocess.run([sys.executable, "-c", program, *words], capture_output=True, text=True, check=True,
                            env=os.environ.copy(), timeout=60)
    *answer, loaded = result.stdout.splitlines()
    return answer, json.loads(loaded)


def test_a_cached_answer_imports_neither_click_nor_yaml_nor_the_kubernetes_client(both):
    for words in (["verify", "-n", ""], ["skew", "--context", ""], ["probe", "--route", ""]):
        first, loaded = _modules_after_a_tab(words)
        assert "click" in loaded and "kubectl_waypoint.cli" in loaded  # a miss goes through click
        again, loaded = _modules_after_a_tab(words)
        assert again == first and loaded == []
