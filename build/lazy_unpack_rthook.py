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
# It runs before any other run-time hook and uses only modules PyInstaller's bootstrap has
# already loaded (os, struct and zlib read the archive's PYZ): importing anything else here could
# need an extension module that is itself still in the archive.


def _waypoint_lazy_unpack(plan):
    import _thread
    import os
    import struct
    import sys
    import zlib

    magic = b"MEI\014\013\012\013\016"  # PyInstaller/archive/writers.py, CArchiveWriter
    cookie = struct.Struct("!8sIIII64s")  # magic, archive length, TOC offset, TOC length, Python version, libpython
    entry_header = struct.Struct("!IIIIBc")  # entry length, offset, stored length, length, compressed, typecode

    def read_toc(stream):
        """{name: (offset in the file, stored length, compressed)} of the archive at the end of `stream`."""
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
            size, offset, stored, _length, compressed, _typecode = entry_header.unpack_from(data, at)
            name = data[at + entry_header.size:at + size].rstrip(b"\0").decode("utf-8")
            toc[name] = (archive + offset, stored, compressed)
            at += size
        return toc

    def write(path, data):
        """Write atomically, as the bootloader would have: never a half-written library to load."""
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        partial = f"{path}.{os.getpid()}.partial"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o700)
        with open(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(partial, path)

    class LazyExtensions:
        """A meta path finder that finds nothing: it only makes sure the file is there to be found."""

        def __init__(self):
            self.lock = _thread.allocate_lock()  # one thread writes; another waits for the libraries it shares
            self.written = set()
            self.toc = None

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
                        offset, stored, compressed = self.toc[entry]
                        stream.seek(offset)
                        data = stream.read(stored)
                        target = os.path.join(sys._MEIPASS, *entry.split("/"))
                        write(target, zlib.decompress(data) if compressed else data)
                        self.written.add(entry)
                        finder = sys.path_importer_cache.get(os.path.dirname(target))
                        if finder is not None and hasattr(finder, "invalidate_caches"):
                            finder.invalidate_caches()  # a directory listing cached before the file existed
            except (OSError, KeyError, zlib.error, struct.error) as exc:
                raise ImportError(f"cannot unpack {missing[0]} from {sys.executable} into {sys._MEIPASS}: {exc}") from exc

        def invalidate_caches(self):
            pass

    sys.meta_path.insert(0, LazyExtensions())
