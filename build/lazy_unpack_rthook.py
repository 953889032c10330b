# PyInstaller run-time hook of the one-file executable (the template; build/lazy.py appends the
# plan): extension modules are written into sys._MEIPASS on their first import, data files on the
# first import of their package.
#
# The bootloader unpacks only the archive entries of typecode 'b', 'x', 'Z' and 'n' (and 'd' of
# multipackage builds) before Python starts: pyinstaller/pyinstaller bootloader/src/pyi_launch.c,
# pyi_launch_extract_files_from_archive ("Not extractable; skip" for every other typecode), and
# pyi_archive.c, _pyi_archive_is_extractable (read at v6.11; tests/test_packaging.py checks the
# bootloader we build with, 6.22). build/lazy.py entered the extension modules nothing needs at
# start-up, the libraries only they link to, and the data files, as 'a' entries; this finder, first on
# sys.meta_path, writes a module's entries (libraries first) when it is about to be imported and
# returns None, so Python's own path finder loads the file as if the bootloader had written it.
# The bootloader still deletes sys._MEIPASS at exit, with whatever was written here.
#
# Libraries and extension modules are kept between runs: written once into the user's cache, in
# a folder named after the content of this build's libraries, and linked into sys._MEIPASS by each
# run that imports them (writing libcrypto and the rest anew cost every run that talks to a cluster
# about 8 ms). A folder another user could write to is never used; where none can be had (no home,
# a read-only or noexec one, Windows and its privileged symbolic links), they are written into
# sys._MEIPASS.
#
# It runs before any other run-time hook and uses only modules PyInstaller's bootstrap has
# already loaded (os, struct and zlib read the archive's PYZ): importing anything else here could
# need an extension module that is itself still in the archive.


def _waypoint_lazy_unpack(plan, kept, key):
    import _thread
    import os
    import stat
    import struct
    import sys
    import time
    import zlib

    unused_days = 30  # a folder of another build's libraries no run has used for this long is removed

    magic = b"MEI\014\013\012\013\016"  # PyInstaller/archive/writers.py, CArchiveWriter
    cookie = struct.Struct("!8sIIII64s")  # magic, archive length, TOC offset, TOC length, Python version, libpython
    entry_header = struct.Struct("!IIIIBc")  # entry length, offset, stored length, length, compressed, typecode

    def read_toc(stream):
        """{name: (offset in the file, stored length, compressed, length)} of the archive at the end of `stream`."""
        end = stream.seek(0, os.SEEK_END)
        position, tail = end, b""
        while True:  # the cookie is the archive's last record, possibly followed by a code signature
            start = max(position - 65536, 0)
            stream.seek(start)
            tail = stream.read(position - start) + tail
            found = tail.rfind(magic)
            if found >= 0 or start == 0:
                break
            position = start
        if found < 0:
            raise ImportError(f"{sys.executable} holds no PyInstaller archive")
        found += start
        stream.seek(found)
        _magic, length, toc_offset, toc_length, _python, _library = cookie.unpack(stream.read(cookie.size))
        archive = found + cookie.size - length
        stream.seek(archive + toc_offset)
        data = stream.read(toc_length)
        toc, at = {}, 0
        while at < len(data):
            size, offset, stored, length, compressed, _typecode = entry_header.unpack_from(data, at)
            name = data[at + entry_header.size:at + size].rstrip(b"\0").decode("utf-8")
            toc[name] = (archive + offset, stored, compressed, length)
            at += size
        return toc

    def make_folders(path):
        """Make `path` and whatever of its parents is missing, each for this user only (mode 0700:
        os.makedirs gives the parents the umask's mode, which may let a group write there)."""
        if not os.path.isdir(path):
            make_folders(os.path.dirname(path))
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass

    def write(path, data):
        """Write atomically, as the bootloader would have: never a half-written library to load."""
        make_folders(os.path.dirname(path))
        partial = f"{path}.{os.getpid()}.partial"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o700)
        try:
            with open(descriptor, "wb") as stream:
                stream.write(data)
            os.replace(partial, path)
        except OSError:
            os.unlink(partial)  # a full disk leaves nothing behind in the cache
            raise

    def private(path, sticky_is_enough=False):
        """Whether no other user can replace what is under `path` (root aside)."""
        info = os.stat(path)
        if sticky_is_enough and info.st_mode & stat.S_ISVTX:
            return True
        return info.st_uid == os.getuid() and not info.st_mode & 0o022

    def cache_folder():
        """This build's folder of kept libraries, made if need be; None where none can be trusted."""
        home = os.environ.get("HOME")
        if sys.platform == "win32" or not key:
            return None
        if sys.platform == "darwin":
            base = os.path.join(home, "Library", "Caches") if home else None
        else:
            base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(home, ".cache") if home else None)
        if not base or not os.path.isabs(base):
            return None
        app = os.path.join(base, "kubectl-waypoint")
        folder = os.path.join(app, "libraries", key)
        try:
            make_folders(base)
            if not private(base, sticky_is_enough=True):
                return None
            for path in (app, os.path.dirname(folder), folder):  # each checked before anything is made in it
                make_folders(path)
                if not private(path):
                    return None
            if os.statvfs(folder).f_flag & getattr(os, "ST_NOEXEC", 0):
                return None  # a home mounted noexec: no library there could be loaded
            os.utime(folder)  # used now: not removed as unused (remove_unused)
        except OSError:
            return None
        return folder

    def remove_unused(folder):
        """Remove the folders of other builds that no run has used for `unused_days`."""
        root = os.path.dirname(folder)
        try:
            names = os.listdir(root)
        except OSError:
            return
        for name in names:
            path = os.path.join(root, name)
            try:
                if path == folder or time.time() - os.lstat(path).st_mtime < unused_days * 86400:
                    continue
                doomed = f"{path}.{os.getpid()}.removing"  # out of the way first: never used half-removed
                os.rename(path, doomed)
                for parent, folders, files in os.walk(doomed, topdown=False):
                    for file in files:
                        os.unlink(os.path.join(parent, file))
                    for child in folders:
                        os.rmdir(os.path.join(parent, child))
                os.rmdir(doomed)
            except OSError:
                continue

    class LazyExtensions:
        """A meta path finder that finds nothing: it only makes sure the file is there to be found."""

        def __init__(self):
            self.lock = _thread.allocate_lock()  # one thread writes; another waits for the libraries it shares
            self.written = set()
            self.toc = None
            self.cache = False  # not looked for yet; then the folder, or None
            self.pruned = False

        def find_spec(self, name, path=None, target=None):
            entries = plan.get(name)
            if entries:
                with self.lock:
                    self.unpack(entries)
            return None

        def unpack(self, entries):
            missing = [entry for entry in entries if entry not in self.written]
            if not missing:
                return
            try:
                with open(sys.executable, "rb") as stream:
                    if self.toc is None:
                        self.toc = read_toc(stream)
                    for entry in missing:
                        target = os.path.join(sys._MEIPASS, *entry.split("/"))
                        if not (entry in kept and self.link(stream, entry, target)):
                            write(target, self.read(stream, entry))
                        self.written.add(entry)
                        finder = sys.path_importer_cache.get(os.path.dirname(target))
                        if finder is not None and hasattr(finder, "invalidate_caches"):
                            finder.invalidate_caches()  # a directory listing cached before the file existed
            except (OSError, KeyError, zlib.error, struct.error) as exc:
                raise ImportError(f"cannot unpack {missing[0]} from {sys.executable} into {sys._MEIPASS}: {exc}") from exc

        def read(self, stream, entry):
            offset, stored, compressed, _length = self.toc[entry]
            stream.seek(offset)
            data = stream.read(stored)
            return zlib.decompress(data) if compressed else data

        def link(self, stream, entry, target):
            """Link `target` to the kept copy of `entry`, kept first if need be; False if it cannot be."""
            if self.cache is False:
                self.cache = cache_folder()
            if self.cache is None:
                return False
            copy = os.path.join(self.cache, *entry.split("/"))
            try:
                try:
                    info = os.lstat(copy)
                    usable = (stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid()
                              and info.st_size == self.toc[entry][3])
                except FileNotFoundError:
                    usable = False
                if not usable:
                    write(copy, self.read(stream, entry))  # replaces a wrong one whole
                    if not self.pruned:  # a new build's first run, or a copy lost: seldom
                        self.pruned = True
                        remove_unused(self.cache)
                make_folders(os.path.dirname(target))
                os.symlink(copy, target)
            except OSError:
                return False
            return True

        def invalidate_caches(self):
            pass

    sys.meta_path.insert(0, LazyExtensions())
