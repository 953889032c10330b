"""Which files the one-file executable unpacks at every start, and which on first import.

PyInstaller's one-file bootloader writes every BINARY entry of its archive (typecode 'b') into a
fresh sys._MEIPASS before Python starts, about 20 MB at every start, most of it never loaded by a
given run: pydantic_core is imported only by the exec paths, libssl and libcrypto only by what
talks to a cluster. This module, used by kubectl-waypoint.spec, keeps eager only what PyInstaller's
bootstrap loads before any of our code runs (libpython, the extension modules its own loader
imports, and the libraries those need); every other extension module, with the bundled libraries
only it needs, goes into the archive as a PKG entry (CArchive typecode 'a'), which the bootloader
does not extract, and the run-time hook lazy_unpack_rthook.py writes them on first import.
Data files go the same way, with the package that reads them (about 7 ms of every start for the
demo's scenarios, certifi's CA bundle and distribution metadata that most runs never read).
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Callable, Iterable

LIB_DYNLOAD = f"python{sys.version_info.major}.{sys.version_info.minor}/lib-dynload/"
# Extension modules imported by PyInstaller's own bootstrap, before any run-time hook can install
# a finder: pyimod03_ctypes.install() imports ctypes (PyInstaller/loader/pyiboot01_bootstrap.py).
# The loader's own _struct and zlib come in pyz.dependencies and are added by the spec.
BOOTSTRAP_EXTENSIONS = ("_ctypes",)
HOOK_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lazy_unpack_rthook.py")
HOOK_NAME = "pyi_rth_waypoint_lazy_unpack"
METADATA_READER = "importlib.metadata"

Entry = tuple[str, str, str]  # (name in the archive, source path, Analysis typecode)


def module_name(dest: str) -> str:
    """The importable name of an extension module from its place in the bundle:
    python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so -> _ssl, pydantic_core/_pydantic_core.*.so ->
    pydantic_core._pydantic_core (PyInstaller's destination_name_for_extension, inverted)."""
    dest = dest.replace(os.sep, "/")
    if dest.startswith(LIB_DYNLOAD):
        dest = dest[len(LIB_DYNLOAD):]
    *packages, filename = dest.split("/")
    return ".".join([*packages, filename.split(".")[0]])


def split(binaries: Iterable[Entry], eager_modules: Iterable[str], python_library: str,
          needs: Callable[[str], Iterable[str]]) -> tuple[list[Entry], list[Entry], dict[str, tuple[str, ...]]]:
    """(eager entries, lazy entries, {module: lazy archive names to write before loading it}).

    `needs(source)` lists the file names of the shared libraries a binary links to. A library
    is lazy only when no eager binary needs it; a BINARY no extension module needs (loaded by
    ctypes, or by libpython) stays eager.
    """
    binaries = sorted(set(binaries))
    by_dest = {dest: (dest, source, kind) for dest, source, kind in binaries}
    libraries = {os.path.basename(dest): dest for dest, _source, kind in binaries if kind == "BINARY"}
    closures: dict[str, list[str]] = {}

    def closure(dest: str) -> list[str]:
        """`dest` and every bundled library it needs, directly or not, libraries first."""
        if dest not in closures:
            closures[dest] = []  # cut cycles
            found: list[str] = []
            for name in sorted(needs(by_dest[dest][1])):
                library = libraries.get(os.path.basename(name))
                if library and library != dest:
                    found += [d for d in closure(library) if d not in found]
            closures[dest] = found + [dest]
        return closures[dest]

    extensions = {module_name(dest): dest for dest, _source, kind in binaries if kind == "EXTENSION"}
    eager_modules = set(eager_modules)
    lazy_modules = {name: dest for name, dest in extensions.items() if name not in eager_modules}
    needed_by_lazy = {d for dest in lazy_modules.values() for d in closure(dest)}
    roots = [dest for dest, _source, kind in binaries
             if dest not in needed_by_lazy or os.path.basename(dest) == python_library
             or (kind == "EXTENSION" and module_name(dest) in eager_modules)]
    eager = {d for root in roots for d in closure(root)}
    plan = {name: tuple(d for d in closure(dest) if d not in eager) for name, dest in sorted(lazy_modules.items())}
    return ([by_dest[d] for d in sorted(eager)], [by_dest[d] for d in sorted(by_dest) if d not in eager], plan)


def split_data(datas: Iterable[Entry], packages: Iterable[str]) -> tuple[list[Entry], list[Entry], dict[str, tuple[str, ...]]]:
    """(eager entries, lazy entries, {module: data files to write before importing it}).

    A data file is written when the package whose folder holds it is first imported: the nearest
    enclosing one (kubectl_waypoint/sim/scenarios/bookinfo.yaml with kubectl_waypoint.sim, certifi's
    cacert.pem with certifi), as every reader of a package's data is code of that package or of
    a package inside it. The metadata of distributions (*.dist-info) goes with importlib.metadata,
    which reads it. A file of no package stays eager, as does what is not plain data.
    """
    packages = set(packages)
    eager, lazy_entries, plan = [], [], {}
    for entry in sorted(set(datas)):
        dest = entry[0].replace(os.sep, "/")
        folders = dest.split("/")[:-1]
        if entry[2] != "DATA":  # a symbolic link: the bootloader's to make
            owner = None
        elif folders and folders[0].endswith(".dist-info"):
            owner = METADATA_READER
        else:
            owner = next((".".join(folders[:depth]) for depth in range(len(folders), 0, -1)
                          if ".".join(folders[:depth]) in packages), None)
        if owner is None:
            eager.append(entry)
        else:
            lazy_entries.append(entry)
            plan[owner] = (*plan.get(owner, ()), dest)
    return eager, lazy_entries, plan


def cache_key(entries: Iterable[tuple[str, str]]) -> str:
    """The name of the folder the libraries `entries` ((name in the archive, file)) are kept in
    between runs: from their names and contents, so that another build's are kept apart."""
    digest = hashlib.sha256()
    for dest, source in sorted(entries):
        with open(source, "rb") as stream:
            digest.update(f"{dest}\0{hashlib.sha256(stream.read()).hexdigest()}\n".encode())
    return digest.hexdigest()[:32]


def write_hook(path: str, plan: dict[str, tuple[str, ...]], kept: Iterable[str] = (), key: str | None = None) -> str:
    """The run-time hook: the template with the plan appended (sorted, so two builds are identical);
    the entries `kept` are kept between runs in the user's cache folder named `key`."""
    with open(HOOK_TEMPLATE, encoding="utf-8") as stream:
        source = stream.read()
    lines = "".join(f"    {name!r}: {entries!r},\n" for name, entries in sorted(plan.items()))
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(f"{source}\n_waypoint_lazy_unpack({{\n{lines}}}, frozenset({sorted(kept)!r}), {key!r})\n"
                     "del _waypoint_lazy_unpack\n")
    return path
