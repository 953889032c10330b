"""The single executable, its release archive and the Krew manifests, checked offline.

The executable is built once per session with the documented command's code (build/build.py)
into a temporary folder, then put on a PATH the tests control, where the real kubectl finds it.
"""

from __future__ import annotations

import copy
import glob
import hashlib
import importlib.util
import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tarfile
import time

import pytest
import yaml

import kubectl_waypoint
from conftest import kubectl_binary
from kubectl_waypoint.sim import SimCluster

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = f"v{kubectl_waypoint.__version__}"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"waypoint_build_{name}", os.path.join(REPO, "build", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build = _load("build")
archive = _load("archive")
krew = _load("krew")
lazy = _load("lazy")


def sample_paths() -> list[str]:
    """Accepted krew-index manifests, copied unchanged from shared/reference/krew-index-samples."""
    found = sorted(glob.glob(os.path.join(REPO, "tests", "fixtures", "krew-index", "*.yaml")))
    assert found, "tests/fixtures/krew-index is empty"
    return found


def sha256(path: str) -> str:
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


# -- the build, once per session -------------------------------------------------------------------

@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """(executable, archive) from build/build.py, built into a temporary folder."""
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.fail("PyInstaller is not installed: pip install -e '.[test]' brings it")
    folder = tmp_path_factory.mktemp("build")
    log = folder / "build.log"
    started = time.monotonic()
    with open(log, "w") as stream:
        result = subprocess.run([sys.executable, os.path.join(REPO, "build", "build.py"),
                                 "--dist", str(folder / "dist"), "--work", str(folder / "work")],
                                stdout=stream, stderr=subprocess.STDOUT, timeout=900, check=False)
    if result.returncode:
        pytest.fail(f"build/build.py failed:\n{log.read_text()[-4000:]}")
    print(f"\nbuild/build.py took {time.monotonic() - started:.0f}s")
    os_name, arch = build.krew_platform()
    executable = str(folder / "dist" / "kubectl-waypoint")
    return executable, str(folder / "dist" / build.archive_name(TAG, os_name, arch))


@pytest.fixture(scope="session")
def plugin_bin(built, tmp_path_factory):
    """A PATH folder laid out as Krew leaves it, plus the completion link of the README one-liner."""
    folder = tmp_path_factory.mktemp("krew-bin")
    store = tmp_path_factory.mktemp("krew-store")
    os_name, arch = build.krew_platform()
    manifest = render_krew_template(built[1])
    installed = krew.install(krew.platform_for(manifest, os_name, arch), built[1], str(store / TAG))
    os.symlink(installed, folder / "kubectl-waypoint")
    os.symlink("kubectl-waypoint", folder / "kubectl_complete-waypoint")
    return str(folder)


@pytest.fixture(scope="session")
def bookinfo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim")
    with SimCluster("bookinfo", tls=True) as sim:
        sim.kubeconfig = sim.write_kubeconfig(str(folder / "kubeconfig"))
        yield sim


def run(argv, path=None, env=None, **kwargs):
    environment = dict(os.environ, **(env or {}))
    if path is not None:
        environment["PATH"] = path
    return subprocess.run(argv, capture_output=True, text=True, env=environment, timeout=120, **kwargs)


# -- the executable -------------------------------------------------------------------------------

def test_version_reports_the_version_and_the_commit_it_was_built_from(built):
    result = run([built[0], "version", "-o", "json"])
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["version"] == TAG
    assert info["commit"] == build.commit_stamp()
    assert re.fullmatch(r"[0-9a-f]{12}(-dirty)?", info["commit"]), info["commit"]


def test_a_build_outside_git_needs_the_commit_named(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "REPO", str(tmp_path))  # a source tree without .git
    monkeypatch.delenv("WAYPOINT_COMMIT", raising=False)
    with pytest.raises(SystemExit, match="WAYPOINT_COMMIT"):
        build.commit_stamp()
    monkeypatch.setenv("WAYPOINT_COMMIT", "0123456789ab")
    assert build.commit_stamp() == "0123456789ab"


def test_the_build_leaves_no_stamp_in_the_source_tree(built):
    for written in ("_build.py", "_help_pages.py"):
        assert not os.path.exists(os.path.join(REPO, "kubectl_waypoint", written))


@pytest.mark.parametrize("columns", ["60", "200"])
def test_the_single_files_stored_help_is_what_the_source_prints(built, columns):
    """--help comes from pages rendered at build time (help_pages.py): the same text as click's."""
    from PyInstaller.archive.readers import CArchiveReader

    assert "kubectl_waypoint._help_pages" in CArchiveReader(built[0]).open_embedded_archive("PYZ.pyz").toc
    for args in (["--help"], ["skew", "-h"], ["watch", "--help"]):
        frozen = run([built[0], *args], env={"COLUMNS": columns})
        source = run([sys.executable, "-m", "kubectl_waypoint", *args], env={"COLUMNS": columns})
        assert frozen.returncode == source.returncode == 0, frozen.stderr + source.stderr
        assert frozen.stdout == source.stdout, args


def test_kubectl_finds_the_plugin_and_lists_it_without_warnings(plugin_bin):
    listed = run([kubectl_binary(), "plugin", "list"], path=plugin_bin)
    assert listed.returncode == 0, listed.stderr
    assert os.path.join(plugin_bin, "kubectl-waypoint") in listed.stdout
    assert "warning" not in (listed.stdout + listed.stderr).lower()
    version = run([kubectl_binary(), "waypoint", "version"], path=plugin_bin)
    assert version.returncode == 0 and version.stdout.startswith(f"kubectl-waypoint {TAG} (commit ")


def test_kubectl_waypoint_skew_against_the_simulated_cluster(plugin_bin, bookinfo):
    result = run([kubectl_binary(), "waypoint", "skew", "--kubeconfig", bookinfo.kubeconfig], path=plugin_bin)
    assert result.returncode == 0, result.stderr
    assert "result: pass" in result.stdout


def test_yaml_output_of_the_single_file_is_the_json_document(built, bookinfo):
    # The executable carries no libyaml: PyYAML falls back to its pure-Python code.
    outputs = {fmt: run([built[0], "skew", "--kubeconfig", bookinfo.kubeconfig, "-o", fmt]) for fmt in ("json", "yaml")}
    assert all(result.returncode == 0 for result in outputs.values()), outputs
    as_yaml, as_json = yaml.safe_load(outputs["yaml"].stdout), json.loads(outputs["json"].stdout)
    as_yaml.pop("generatedAt"), as_json.pop("generatedAt")  # two runs, possibly a second apart
    assert as_yaml == as_json


def test_the_demo_runs_from_the_single_file(built):
    # The simulated cluster makes its certificate with the openssl command, a child process that
    # must load the system's libssl, not the bundle's.
    result = run([built[0], "demo", "-o", "json"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"] == "pass"


def test_offline_help_runs_from_the_single_file(built):
    """The check documentation (checks.md) is bundled like the catalogue."""
    explained = run([built[0], "explain", "waypoint-sync"])
    assert explained.returncode == 0 and "### waypoint-sync" in explained.stdout, explained.stderr
    assert run([built[0], "rbac"]).stdout.startswith("apiVersion: rbac.authorization.k8s.io/v1")


@pytest.mark.parametrize("users_library_path", ["/opt/users-own-libs", None])
def test_credential_plugins_get_the_users_library_path(built, bookinfo, tmp_path, users_library_path):
    seen = tmp_path / "seen"
    plugin = tmp_path / "credential-plugin"
    plugin.write_text("#!/bin/sh\n"
                      f'printf "%s" "${{LD_LIBRARY_PATH-unset}}" > "{seen}"\n'
                      'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
                      f'"status":{{"token":"{bookinfo.token}"}}}}\'\n')
    plugin.chmod(0o755)
    config = yaml.safe_load(open(bookinfo.kubeconfig))
    config["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                                           "interactiveMode": "Never"}}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    if users_library_path:
        env["LD_LIBRARY_PATH"] = users_library_path
    result = subprocess.run([built[0], "skew", "--kubeconfig", str(kubeconfig)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert seen.read_text() == (users_library_path or "unset")


def test_the_single_file_reaches_the_cluster_through_a_socks5_proxy(built, bookinfo, tmp_path):
    """PySocks is imported only for a socks5:// proxy-url: the bundle must carry it all the same."""
    from support.proxies import Socks5Proxy

    with Socks5Proxy() as proxy:
        config = yaml.safe_load(open(bookinfo.kubeconfig))
        config["clusters"][0]["cluster"]["proxy-url"] = proxy.url
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        result = run([built[0], "skew", "--kubeconfig", str(kubeconfig), "-n", "bookinfo"])
        assert result.returncode == 0, result.stderr
        assert proxy.tunnels


def test_completion_through_kubectl_reaches_the_single_file(plugin_bin, bookinfo):
    def kubectl_complete(*words):
        result = run([kubectl_binary(), "__complete", "waypoint", *words], path=plugin_bin, check=True)
        return result.stdout.splitlines()

    assert kubectl_complete("sk")[0].split("\t")[0] == "skew"
    assert kubectl_complete("skew", "--kubeconfig", bookinfo.kubeconfig, "-n", "istio") == ["istio-system", ":4"]


# -- lazy unpacking --------------------------------------------------------------------------------

# Entered as PKG (CArchive typecode 'a', which the bootloader does not extract): exec and TLS.
LAZY_LIBRARIES = ("pydantic_core/_pydantic_core.", "libcrypto.so", "libssl.so", "python3.11/lib-dynload/_ssl.")
TLS = ("libcrypto.so", "libssl.so", "python3.11/lib-dynload/_ssl.")
PYDANTIC_CORE = ("pydantic_core/_pydantic_core.",)
# Data files, written with the package that reads them.
LAZY_DATA = ("kubectl_waypoint/sim/scenarios/", "kubectl_waypoint/checks/", "certifi/", "click-", "pydantic-")


def _children(pid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stream:
                parent = int(stream.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid:
            found.append(int(entry))
    return found


def run_keeping_meipass(argv, folder, env=None, links=None) -> tuple[str, str, set[str]]:
    """(stdout, stderr, the files in the bootloader's _MEIxxxxxx folder when the program ended);
    `links`, a dict, gets those that are symbolic links, with their targets.

    The one-file bootloader unpacks into a fresh folder under TMPDIR, runs Python in a child
    process and deletes the folder when the child has ended. To see what a run left there, the
    child's standard output is a pipe filled to the brim, so the child waits at its first write;
    once the child exists the bootloader is killed (SIGKILL: it cannot forward it), so nothing
    deletes the folder; then the pipe is drained and the child runs to its end.
    """
    tmpdir = folder / "tmp"
    tmpdir.mkdir()
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    filled = 0
    for chunk in (b"\0" * 4096, b"\0"):
        try:
            while True:
                filled += os.write(write_end, chunk)
        except BlockingIOError:
            pass
    os.set_blocking(write_end, True)
    with open(folder / "stderr", "w") as stderr, open(read_end, "rb") as stdout:
        bootloader = subprocess.Popen(argv, stdout=write_end, stderr=stderr,
                                      env=dict(os.environ, **(env or {}), TMPDIR=str(tmpdir)))
        os.close(write_end)
        try:
            deadline = time.monotonic() + 60
            while not _children(bootloader.pid):
                assert bootloader.poll() is None, f"the bootloader ended early: {(folder / 'stderr').read_text()}"
                assert time.monotonic() < deadline, "the bootloader started no child"
                time.sleep(0.005)
        finally:
            bootloader.kill()
            bootloader.wait()
        output = b"".join(iter(lambda: stdout.read(65536), b""))  # to EOF: the child has ended
    meipass = list(tmpdir.glob("_MEI*"))
    assert len(meipass) == 1, meipass
    files = {str(path.relative_to(meipass[0])) for path in meipass[0].rglob("*") if not path.is_dir()}
    if links is not None:
        links.update({name: os.readlink(meipass[0] / name) for name in files if (meipass[0] / name).is_symlink()})
    return output[filled:].decode(), (folder / "stderr").read_text(), files


def _unpacked(files: set[str], prefixes) -> set[str]:
    """Which of the libraries named by `prefixes` are among `files`."""
    return {prefix for prefix in prefixes if any(name.startswith(prefix) for name in files)}


def test_the_libraries_of_exec_and_tls_stay_in_the_file_until_imported(built):
    from PyInstaller.archive.readers import CArchiveReader

    toc = CArchiveReader(built[0]).toc
    typecodes = {name: entry[4] for name, entry in toc.items()}
    for prefix in LAZY_LIBRARIES:
        assert {typecodes[name] for name in typecodes if name.startswith(prefix)} == {"a"}, prefix
    assert typecodes["libpython3.11.so.1.0"] == "b"  # the bootloader loads it before any Python runs
    assert toc[next(n for n in toc if n.startswith(PYDANTIC_CORE))][3] == 1  # compressed: only exec inflates it
    assert os.path.getsize(built[0]) <= 25e6


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="follows the bootloader's child through /proc")
@pytest.mark.parametrize("argv", [["--help"], ["version"]])
def test_help_and_version_unpack_no_tls_no_pydantic_and_no_data(built, tmp_path, argv):
    stdout, stderr, files = run_keeping_meipass([built[0], *argv], tmp_path)
    assert "kubectl-waypoint" in stdout or "Usage:" in stdout, stderr
    assert "libpython3.11.so.1.0" in files  # the folder seen is the one the bootloader filled
    assert _unpacked(files, LAZY_LIBRARIES) == set()
    assert _unpacked(files, LAZY_DATA) == set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="follows the bootloader's child through /proc")
def test_data_files_are_unpacked_with_the_package_that_reads_them(built, tmp_path):
    """The demo reads its scenarios (kubectl_waypoint.sim) and verify's check catalogue
    (kubectl_waypoint.checks); skew no scenario (test_talking_to_a_cluster_unpacks_tls_on_first_import)."""
    stdout, stderr, files = run_keeping_meipass([built[0], "demo", "-o", "json"], tmp_path)
    assert json.loads(stdout)["result"] == "pass", stderr
    assert {"kubectl_waypoint/sim/scenarios/", "kubectl_waypoint/checks/"} <= _unpacked(files, LAZY_DATA)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="follows the bootloader's child through /proc")
def test_talking_to_a_cluster_unpacks_tls_on_first_import(built, bookinfo, tmp_path):
    stdout, stderr, files = run_keeping_meipass([built[0], "skew", "--kubeconfig", bookinfo.kubeconfig], tmp_path)
    assert "result: pass" in stdout, stderr
    # Written into _MEIPASS, not found elsewhere: the system has a libssl.so.3 of its own.
    assert _unpacked(files, TLS) == set(TLS)
    assert _unpacked(files, PYDANTIC_CORE) == set()
    assert _unpacked(files, LAZY_DATA) == {"kubectl_waypoint/checks/"}  # the package of the hints skew prints
    assert not [name for name in files if name.endswith(".partial")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="follows the bootloader's child through /proc")
def test_later_starts_link_the_libraries_kept_by_the_first(built, bookinfo, tmp_path):
    home = tmp_path / "home"
    seen = []
    for run in ("first", "second"):
        (tmp_path / run).mkdir()
        links: dict[str, str] = {}
        stdout, stderr, files = run_keeping_meipass([built[0], "skew", "--kubeconfig", bookinfo.kubeconfig],
                                                    tmp_path / run, env={"HOME": str(home)}, links=links)
        assert "result: pass" in stdout, stderr
        seen.append(links)
    kept = home / ".cache" / "kubectl-waypoint" / "libraries"
    (folder,) = kept.iterdir()  # one build, one folder
    for links in seen:
        tls = {name: target for name, target in links.items() if name.startswith(TLS)}
        assert _unpacked(links, TLS) == set(TLS)  # each TLS library linked, none written
        assert all(target == str(folder / name) for name, target in tls.items())
    assert not [name for name in seen[1] if name.startswith(LAZY_DATA)]  # data is written, not kept


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="follows the bootloader's child through /proc")
def test_exec_unpacks_pydantic_core_on_first_import(built, bookinfo, tmp_path):
    """probe runs curl in a pod through exec, the one path that imports the kubernetes package."""
    stdout, stderr, files = run_keeping_meipass(
        [built[0], "probe", "--kubeconfig", bookinfo.kubeconfig, "-n", "curl", "deploy/curl",
         "http://productpage.bookinfo:9080/productpage", "--expect-status", "200", "-o", "json"], tmp_path)
    assert json.loads(stdout)["result"] == "pass", stderr
    assert _unpacked(files, PYDANTIC_CORE) == set(PYDANTIC_CORE)
    assert _unpacked(files, TLS) == set(TLS)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="follows the bootloader's child through /proc")
def test_the_completion_name_unpacks_from_the_file_its_link_names(plugin_bin, bookinfo, tmp_path):
    """kubectl runs kubectl_complete-waypoint, a symbolic link to the executable; a fresh HOME, so
    that no completion cache answers instead of the cluster."""
    link = os.path.join(plugin_bin, "kubectl_complete-waypoint")
    stdout, stderr, files = run_keeping_meipass([link, "skew", "--kubeconfig", bookinfo.kubeconfig, "-n", "istio"],
                                                tmp_path, env={"HOME": str(tmp_path)})
    assert stdout.splitlines() == ["istio-system", ":4"], stderr
    assert _unpacked(files, TLS) == set(TLS)


def test_lazy_libraries_are_those_only_lazy_extension_modules_need():
    needs = {"libpython.so": ["libz.so", "libc.so.6"], "zlib.so": ["libz.so"], "_ctypes.so": ["libffi.so"],
             "_ssl.so": ["libssl.so", "libcrypto.so"], "libssl.so": ["libcrypto.so"], "_hashlib.so": ["libcrypto.so"],
             "core.so": ["libgcc_s.so"], "_uuid.so": ["libuuid.so"], "libffi.so": [], "libz.so": [],
             "libcrypto.so": [], "libgcc_s.so": [], "libuuid.so": [], "libloaded_by_ctypes.so": []}
    dynload = lazy.LIB_DYNLOAD
    binaries = [("libpython.so", "libpython.so", "BINARY"), (dynload + "zlib.cpython-311.so", "zlib.so", "EXTENSION"),
                (dynload + "_ctypes.cpython-311.so", "_ctypes.so", "EXTENSION"),
                (dynload + "_ssl.cpython-311.so", "_ssl.so", "EXTENSION"),
                (dynload + "_hashlib.cpython-311.so", "_hashlib.so", "EXTENSION"),
                (dynload + "_uuid.cpython-311.so", "_uuid.so", "EXTENSION"),
                ("pkg/sub/core.cpython-311.so", "core.so", "EXTENSION")] + [
        (name, name, "BINARY") for name in ("libz.so", "libffi.so", "libssl.so", "libcrypto.so", "libgcc_s.so",
                                            "libuuid.so", "libloaded_by_ctypes.so")]
    eager, lazy_entries, plan = lazy.split(binaries, ["zlib", "_ctypes"], "libpython.so", lambda source: needs[source])
    assert {dest for dest, _source, _kind in eager} == {
        "libpython.so", "libz.so", dynload + "zlib.cpython-311.so", dynload + "_ctypes.cpython-311.so", "libffi.so",
        "libloaded_by_ctypes.so"}
    assert {dest for dest, _source, _kind in lazy_entries} == {
        dynload + "_ssl.cpython-311.so", dynload + "_hashlib.cpython-311.so", dynload + "_uuid.cpython-311.so",
        "pkg/sub/core.cpython-311.so", "libssl.so", "libcrypto.so", "libgcc_s.so", "libuuid.so"}
    assert plan == {"_ssl": ("libcrypto.so", "libssl.so", dynload + "_ssl.cpython-311.so"),
                    "_hashlib": ("libcrypto.so", dynload + "_hashlib.cpython-311.so"),
                    "_uuid": ("libuuid.so", dynload + "_uuid.cpython-311.so"),
                    "pkg.sub.core": ("libgcc_s.so", "pkg/sub/core.cpython-311.so")}


def test_data_files_go_with_the_nearest_package_that_holds_them_and_metadata_with_its_reader():
    packages = {"app", "app.sim", "certifi"}
    datas = [("app/support.yaml", "/s/support.yaml", "DATA"), ("app/sim/scenarios/a.yaml", "/s/a.yaml", "DATA"),
             ("app/sim/scenarios/b.yaml", "/s/b.yaml", "DATA"), ("certifi/cacert.pem", "/s/cacert.pem", "DATA"),
             ("click-8.5.1.dist-info/METADATA", "/s/METADATA", "DATA"), ("base_library.zip", "/s/base.zip", "DATA"),
             ("notapackage/file.txt", "/s/file.txt", "DATA"), ("app/sim/link.so", "/s/target.so", "SYMLINK")]
    eager, lazy_entries, plan = lazy.split_data(datas, packages)
    assert {dest for dest, _source, _kind in eager} == {"base_library.zip", "notapackage/file.txt", "app/sim/link.so"}
    assert sorted(lazy_entries) == sorted(set(datas) - set(eager))
    assert plan == {"app": ("app/support.yaml",), "app.sim": ("app/sim/scenarios/a.yaml", "app/sim/scenarios/b.yaml"),
                    "certifi": ("certifi/cacert.pem",), "importlib.metadata": ("click-8.5.1.dist-info/METADATA",)}


HOOK_CONTENTS = {"libshared.so.1": os.urandom(70000), "pkg/_native.cpython-311.so": b"extension " * 20000,
                 "python3.11/lib-dynload/_other.cpython-311.so": os.urandom(1000), "pkg/data/table.yaml": b"a: 1\n"}
HOOK_PLAN = {"pkg._native": ("libshared.so.1", "pkg/_native.cpython-311.so"),
             "_other": ("libshared.so.1", "python3.11/lib-dynload/_other.cpython-311.so"),
             "pkg": ("pkg/data/table.yaml",), "_missing": ("libabsent.so",)}
KEPT = ("libshared.so.1", "pkg/_native.cpython-311.so", "python3.11/lib-dynload/_other.cpython-311.so")


def stand_in_executable(folder) -> str:
    """HOOK_CONTENTS in PyInstaller's own CArchiveWriter's archive, after a stand-in bootloader and
    before 100 KB of trailing bytes (a macOS code signature), compressed and stored."""
    from PyInstaller.archive.writers import CArchiveWriter

    for name, data in HOOK_CONTENTS.items():
        (folder / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "src" / name).write_bytes(data)
    CArchiveWriter(str(folder / "pkg"), [(name, str(folder / "src" / name), name.startswith("pkg/"), "a")
                                         for name in HOOK_CONTENTS], pylib_name="libpython3.11.so.1.0")
    executable = folder / "kubectl-waypoint"
    executable.write_bytes(b"\x7fELF stand-in" * 1000 + (folder / "pkg").read_bytes() + os.urandom(100000))
    return str(executable)


def start_hook(folder, monkeypatch, executable, kept=(), key=None, run="1"):
    """Run the hook as a fresh start of the executable would: a new _MEIPASS; its finder and that folder."""
    hook = lazy.write_hook(str(folder / f"hook{run}.py"), HOOK_PLAN, kept, key)
    meipass = folder / f"_MEI{run}"
    meipass.mkdir()
    monkeypatch.setattr(sys, "executable", executable)
    monkeypatch.setattr(sys, "_MEIPASS", str(meipass), raising=False)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    exec(compile(open(hook).read(), hook, "exec"), {"__name__": "__main__"})
    return sys.meta_path[0], meipass


def test_the_run_time_hook_writes_a_modules_libraries_from_the_archive_at_the_end_of_the_file(tmp_path, monkeypatch):
    finder, meipass = start_hook(tmp_path, monkeypatch, stand_in_executable(tmp_path))

    assert finder.find_spec("json") is None and list(meipass.iterdir()) == []  # not in the plan: nothing written
    assert finder.find_spec("pkg._native") is None  # the path finder loads what was written
    written = {str(p.relative_to(meipass)) for p in meipass.rglob("*") if p.is_file()}
    assert written == {"libshared.so.1", "pkg/_native.cpython-311.so"}
    assert all((meipass / name).read_bytes() == HOOK_CONTENTS[name] for name in written)
    shared = (meipass / "libshared.so.1").stat().st_ino
    finder.find_spec("_other")
    assert (meipass / "libshared.so.1").stat().st_ino == shared  # written once, not replaced under a loaded library
    assert (meipass / "python3.11/lib-dynload/_other.cpython-311.so").read_bytes() == HOOK_CONTENTS[
        "python3.11/lib-dynload/_other.cpython-311.so"]
    with pytest.raises(ImportError, match="cannot unpack libabsent.so from .* into "):
        finder.find_spec("_missing")


def _kept_copies(home) -> dict[str, bytes]:
    root = home / ".cache" / "kubectl-waypoint" / "libraries"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_libraries_are_kept_in_the_users_cache_once_and_linked_by_every_start(tmp_path, monkeypatch):
    executable, home = stand_in_executable(tmp_path), tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for run in ("1", "2"):
        finder, meipass = start_hook(tmp_path, monkeypatch, executable, KEPT, "key1", run)
        finder.find_spec("pkg._native"), finder.find_spec("pkg")
        for name in ("libshared.so.1", "pkg/_native.cpython-311.so"):
            link = meipass / name
            assert link.is_symlink() and os.readlink(link) == str(
                home / ".cache/kubectl-waypoint/libraries/key1" / name)
            assert link.read_bytes() == HOOK_CONTENTS[name]
        data = meipass / "pkg/data/table.yaml"
        assert not data.is_symlink() and data.read_bytes() == HOOK_CONTENTS["pkg/data/table.yaml"]  # not kept
        if run == "1":
            first = {name: os.stat(home / ".cache/kubectl-waypoint/libraries/key1" / name).st_ino
                     for name in ("libshared.so.1", "pkg/_native.cpython-311.so")}
    assert {name: os.stat(home / ".cache/kubectl-waypoint/libraries/key1" / name).st_ino
            for name in first} == first  # the second start wrote nothing
    assert _kept_copies(home) == {f"key1/{name}": HOOK_CONTENTS[name]
                                  for name in ("libshared.so.1", "pkg/_native.cpython-311.so")}
    for folder in (home / ".cache/kubectl-waypoint", home / ".cache/kubectl-waypoint/libraries",
                   home / ".cache/kubectl-waypoint/libraries/key1/pkg"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_a_kept_copy_of_the_wrong_size_is_written_again(tmp_path, monkeypatch):
    executable, home = stand_in_executable(tmp_path), tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    start_hook(tmp_path, monkeypatch, executable, KEPT, "key1", "1")[0].find_spec("_other")
    copy = home / ".cache/kubectl-waypoint/libraries/key1/libshared.so.1"
    copy.write_bytes(HOOK_CONTENTS["libshared.so.1"][:100])  # cut short: a disk that filled up, say
    finder, meipass = start_hook(tmp_path, monkeypatch, executable, KEPT, "key1", "2")
    finder.find_spec("_other")
    assert (meipass / "libshared.so.1").read_bytes() == HOOK_CONTENTS["libshared.so.1"]


@pytest.mark.parametrize("spoil", ["writable by others", "not a folder"])
def test_without_a_private_cache_folder_libraries_are_written_into_meipass(tmp_path, monkeypatch, spoil):
    executable, home = stand_in_executable(tmp_path), tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    (home / ".cache").mkdir(parents=True)
    if spoil == "writable by others":
        (home / ".cache" / "kubectl-waypoint").mkdir(mode=0o700)
        os.chmod(home / ".cache" / "kubectl-waypoint", 0o777)  # anyone could swap the libraries
    else:
        (home / ".cache" / "kubectl-waypoint").write_text("")
    finder, meipass = start_hook(tmp_path, monkeypatch, executable, KEPT, "key1")
    finder.find_spec("pkg._native")
    for name in ("libshared.so.1", "pkg/_native.cpython-311.so"):
        assert not (meipass / name).is_symlink() and (meipass / name).read_bytes() == HOOK_CONTENTS[name]
    assert not (home / ".cache" / "kubectl-waypoint" / "libraries").exists()


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="RLIMIT_FSIZE is POSIX")
def test_a_full_disk_leaves_no_partial_copy_behind(tmp_path, monkeypatch):
    """A file-size limit makes every write of libshared.so.1 (70 kB) fail, as a full disk would."""
    import resource

    executable, home = stand_in_executable(tmp_path), tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    finder, meipass = start_hook(tmp_path, monkeypatch, executable, KEPT, "key1")
    limits, handler = resource.getrlimit(resource.RLIMIT_FSIZE), signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (50000, limits[1]))
    try:
        with pytest.raises(ImportError, match="cannot unpack libshared.so.1"):
            finder.find_spec("_other")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    leftovers = [p for folder in (home, meipass) for p in folder.rglob("*") if p.name.endswith(".partial")]
    assert leftovers == []


def test_a_cache_on_a_noexec_mount_is_not_used(tmp_path, monkeypatch):
    """A noexec mount cannot be made here: os.statvfs is stood in for, and says what one would."""
    executable, home = stand_in_executable(tmp_path), tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    real_statvfs = os.statvfs

    def statvfs(path):
        result = real_statvfs(path)
        return os.statvfs_result((*result[:8], result.f_flag | os.ST_NOEXEC, *result[9:]))

    monkeypatch.setattr(os, "statvfs", statvfs)
    finder, meipass = start_hook(tmp_path, monkeypatch, executable, KEPT, "key1")
    finder.find_spec("pkg._native")
    assert not (meipass / "libshared.so.1").is_symlink()
    assert (meipass / "libshared.so.1").read_bytes() == HOOK_CONTENTS["libshared.so.1"]


def test_a_new_builds_first_start_removes_folders_no_start_used_for_30_days(tmp_path, monkeypatch):
    executable, home = stand_in_executable(tmp_path), tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    root = home / ".cache/kubectl-waypoint/libraries"
    for name, age_days in (("old", 31), ("recent", 29)):
        (root / name / "sub").mkdir(parents=True, mode=0o700)
        (root / name / "sub" / "libold.so").write_bytes(b"old")
        moment = time.time() - age_days * 86400
        os.utime(root / name, (moment, moment))
    os.chmod(home / ".cache/kubectl-waypoint", 0o700), os.chmod(root, 0o700)
    start_hook(tmp_path, monkeypatch, executable, KEPT, "new", "1")[0].find_spec("_other")
    assert sorted(os.listdir(root)) == ["new", "recent"]
    # Used again: its folder counts as used now, whatever another build's start removes.
    start_hook(tmp_path, monkeypatch, executable, KEPT, "recent", "2")[0].find_spec("_other")
    assert time.time() - (root / "recent").stat().st_mtime < 3600


# -- the release archive ---------------------------------------------------------------------------

def test_the_archive_holds_the_executable_and_license_as_krew_wants(built):
    assert krew.archive_problems(built[1]) == []
    assert krew.archive_entries(built[1]) == [("LICENSE", "file", 0o644), ("kubectl-waypoint", "file", 0o755)]
    with tarfile.open(built[1]) as tar:
        members = tar.getmembers()
        assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
        assert {m.mtime for m in members} == {build.source_date_epoch()}
        assert tar.extractfile("kubectl-waypoint").read() == open(built[0], "rb").read()
    with open(built[1], "rb") as stream:
        header = stream.read(10)
    assert int.from_bytes(header[4:8], "little") == build.source_date_epoch()  # gzip mtime, and no file name:
    assert header[3] & 0x08 == 0


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_archives_of_the_same_files_are_byte_identical(tmp_path, suffix):
    program, license_file = tmp_path / "prog", tmp_path / "LICENSE"
    program.write_bytes(b"#!/bin/sh\n")
    license_file.write_text("license text")
    members = [archive.Member("prog", str(program), 0o755), archive.Member("LICENSE", str(license_file))]
    first = archive.write_archive(str(tmp_path / f"one{suffix}"), members, 1700000000)
    os.utime(program, (0, 0))  # the files' own times must not matter
    second = archive.write_archive(str(tmp_path / f"two{suffix}"), list(reversed(members)), 1700000000)
    assert sha256(first) == sha256(second)
    assert krew.archive_entries(first) == [("LICENSE", "file", 0o644), ("prog", "file", 0o755)]


def test_archive_refuses_names_that_escape(tmp_path):
    (tmp_path / "f").write_text("x")
    for name in ("../f", "/etc/f"):
        with pytest.raises(ValueError):
            archive.write_archive(str(tmp_path / "a.tar.gz"), [archive.Member(name, str(tmp_path / "f"))], 0)


def _tar_with(path, entries):
    """A .tar.gz with raw entries: (name, type, payload)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, 0o755
            if kind == tarfile.SYMTYPE:
                info.linkname = payload
                tar.addfile(info)
            else:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return str(path)


@pytest.mark.parametrize("entries, problem", [
    ([("kubectl-waypoint", tarfile.SYMTYPE, "/bin/sh"), ("LICENSE", tarfile.REGTYPE, b"l")], "symlink"),
    ([("../kubectl-waypoint", tarfile.REGTYPE, b"x"), ("LICENSE", tarfile.REGTYPE, b"l")], "suspicious"),
    ([("/kubectl-waypoint", tarfile.REGTYPE, b"x"), ("LICENSE", tarfile.REGTYPE, b"l")], "absolute"),
    ([("kubectl-waypoint", tarfile.REGTYPE, b"x")], "LICENSE"),
    ([("bin/kubectl-waypoint", tarfile.REGTYPE, b"x"), ("LICENSE", tarfile.REGTYPE, b"l")], "cannot be found"),
])
def test_krew_install_refuses_bad_archives(tmp_path, entries, problem):
    bad = _tar_with(tmp_path / "bad.tar.gz", entries)
    platform = {"bin": "kubectl-waypoint", "sha256": sha256(bad), "selector": {"matchLabels": {"os": "linux"}}}
    with pytest.raises(krew.KrewError, match=problem):
        krew.install(platform, bad, str(tmp_path / "installed"))


def test_krew_install_refuses_a_wrong_checksum(built, tmp_path):
    platform = {"bin": "kubectl-waypoint", "sha256": "0" * 64}
    with pytest.raises(krew.KrewError, match="checksum does not match"):
        krew.install(platform, built[1], str(tmp_path / "installed"))


# -- the Krew manifests ----------------------------------------------------------------------------

def render_krew_template(local_archive: str) -> dict:
    """.krew.yaml as krew-release-bot renders it for TAG; this machine's archive gives its real
    sha256, the archives built on other machines a stand-in derived from their names."""
    with open(os.path.join(REPO, ".krew.yaml"), encoding="utf-8") as stream:
        text = stream.read()

    def sha256_of_url(url: str) -> str:
        name = url.rsplit("/", 1)[1]
        return sha256(local_archive) if name == os.path.basename(local_archive) else hashlib.sha256(name.encode()).hexdigest()

    return yaml.safe_load(krew.render_template(text, TAG, sha256_of_url))


@pytest.mark.parametrize("path", sample_paths(), ids=os.path.basename)
def test_every_manifest_accepted_by_krew_index_passes(path):
    with open(path, encoding="utf-8") as stream:
        assert krew.validate_manifest(yaml.safe_load(stream), os.path.basename(path)) == []


def _without(key):
    return lambda m: m["spec"].pop(key)


CORRUPTIONS = {
    "version without v": (lambda m: m["spec"].update(version="0.6.0"), "failed to parse plugin version"),
    "version not semver": (lambda m: m["spec"].update(version="v0.6"), "failed to parse plugin version"),
    "upper-case sha256": (lambda m: m["spec"]["platforms"][0].update(sha256=m["spec"]["platforms"][0]["sha256"].upper()),
                          "`sha256` value"),
    "no bin": (lambda m: m["spec"]["platforms"][0].pop("bin"), "`bin` has to be set"),
    "no uri": (lambda m: m["spec"]["platforms"][0].pop("uri"), "`uri` has to be set"),
    "selector key": (lambda m: m["spec"]["platforms"][0]["selector"]["matchLabels"].update(distro="debian"),
                     "key 'distro' not supported"),
    "no selector": (lambda m: m["spec"]["platforms"][0].pop("selector"), "nil selector"),
    "overlap": (lambda m: m["spec"]["platforms"].append(copy.deepcopy(m["spec"]["platforms"][0])), "overlapping"),
    "unsupported platform": (lambda m: m["spec"]["platforms"][0]["selector"]["matchLabels"].update(os="plan9"),
                             "doesn't match any supported platforms"),
    "renamed": (lambda m: m["metadata"].update(name="forest"), "plugin should be named 'tree'"),
    "two-line short description": (lambda m: m["spec"].update(shortDescription="a\nb"), "line breaks"),
    "no short description": (_without("shortDescription"), "should have a short description"),
    "no platforms": (lambda m: m["spec"].update(platforms=[]), "should have a platform specified"),
    "empty files": (lambda m: m["spec"]["platforms"][0].update(files=[]), "`files` has to be unspecified or non-empty"),
    "wrong kind": (lambda m: m.update(kind="Plugins"), "kind='Plugins'"),
    "old apiVersion": (lambda m: m.update(apiVersion="krew.googlecontainertools.github.com/v1alpha1"), "apiVersion"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_copies_of_an_accepted_manifest_are_refused(corruption):
    mutate, problem = CORRUPTIONS[corruption]
    path = next(p for p in sample_paths() if p.endswith("tree.yaml"))
    with open(path, encoding="utf-8") as stream:
        manifest = yaml.safe_load(stream)
    mutate(manifest)
    problems = krew.validate_manifest(manifest, "tree.yaml")
    assert any(problem in p for p in problems), problems


PLATFORMS = [("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64"), ("windows", "amd64")]


def _check_release_manifest(manifest: dict) -> None:
    assert krew.validate_manifest(manifest, "waypoint.yaml") == []
    assert manifest["spec"]["version"] == TAG
    homepage = manifest["spec"]["homepage"]
    for os_name, arch in PLATFORMS:
        platform = krew.platform_for(manifest, os_name, arch)
        suffix = ".zip" if os_name == "windows" else ".tar.gz"
        assert platform["uri"] == f"{homepage}/releases/download/{TAG}/kubectl-waypoint_{TAG}_{os_name}_{arch}{suffix}"
        assert platform["bin"] == "kubectl-waypoint" + (".exe" if os_name == "windows" else "")
    assert len(manifest["spec"]["platforms"]) == len(PLATFORMS)
    for field in ("shortDescription", "description", "caveats"):  # validate-krew-manifest warns past 70/80
        limit = 70 if field == "shortDescription" else 80
        assert all(len(line) <= limit for line in manifest["spec"][field].splitlines()), field


def test_the_rendered_template_installs_this_platforms_archive_like_krew(built, tmp_path):
    manifest = render_krew_template(built[1])
    _check_release_manifest(manifest)
    platform = krew.platform_for(manifest, *build.krew_platform())
    binary = krew.install(platform, built[1], str(tmp_path / "store" / TAG))
    assert os.stat(binary).st_mode & stat.S_IXUSR
    assert os.path.isfile(tmp_path / "store" / TAG / "LICENSE")


def test_the_template_uses_only_what_the_release_bot_understands():
    with pytest.raises(krew.KrewError, match="unsupported"):
        krew.render_template("version: {{ .Tag }}\n", TAG, lambda url: "0" * 64)


def test_plugin_yaml_is_the_template_rendered_for_the_current_release():
    with open(os.path.join(REPO, "plugin.yaml"), encoding="utf-8") as stream:
        manifest = yaml.safe_load(stream)
    _check_release_manifest(manifest)
    published = {p["uri"]: p["sha256"] for p in manifest["spec"]["platforms"]}
    with open(os.path.join(REPO, ".krew.yaml"), encoding="utf-8") as stream:
        rendered = yaml.safe_load(krew.render_template(stream.read(), manifest["spec"]["version"],
                                                       lambda uri: json.dumps(published[uri])))
    assert rendered == manifest
