"""Deterministic release archives: the same files always give the same bytes.

Entries are sorted, carry one fixed mtime, owner 0:0 and no user names, and are regular files
only (Krew refuses links). The gzip header carries neither a file name nor the current time.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import time
import zipfile
from dataclasses import dataclass

ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can hold


@dataclass(frozen=True)
class Member:
    """One file of the archive: its name inside, where its bytes come from, its permission bits."""

    name: str
    source: str
    mode: int = 0o644


def write_archive(path: str, members: list[Member], mtime: int) -> str:
    """Write a .tar.gz or .zip (chosen by the suffix of `path`); returns the path."""
    ordered = sorted(members, key=lambda m: m.name)
    for member in ordered:
        if os.path.isabs(member.name) or ".." in member.name.split("/") or "\\" in member.name:
            raise ValueError(f"archive member name {member.name!r} must be a relative POSIX path")
    if path.endswith(".tar.gz"):
        _write_tar_gz(path, ordered, mtime)
    elif path.endswith(".zip"):
        _write_zip(path, ordered, max(mtime, ZIP_EPOCH))
    else:
        raise ValueError(f"{path}: the archive name must end in .tar.gz or .zip")
    return path


def _write_tar_gz(path: str, members: list[Member], mtime: int) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9,
                                                mtime=mtime) as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for member in members:
                with open(member.source, "rb") as stream:
                    data = stream.read()
                info = tarfile.TarInfo(member.name)
                info.size = len(data)
                info.mode = member.mode
                info.mtime = mtime
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.type = tarfile.REGTYPE
                tar.addfile(info, io.BytesIO(data))


def _write_zip(path: str, members: list[Member], mtime: int) -> None:
    date_time = time.gmtime(mtime)[:6]
    with zipfile.ZipFile(path, "w") as archive:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=date_time)
            info.create_system = 3  # Unix, so that the permission bits below are honoured
            info.external_attr = (stat.S_IFREG | member.mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(member.source, "rb") as stream:
                archive.writestr(info, stream.read(), compresslevel=9)
