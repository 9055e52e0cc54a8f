"""
Byte access to a deploy file: a zip, a path inside one, or a directory.

A source lists member names and sizes and reads members; it knows nothing of
manifests or hashes (see :mod:`torch_liberator.deployfile`). Stored (not
compressed) zip members that the caller will hash are read straight into one
writable buffer, skipping zipfile's CRC pass and a copy.

Example:
    >>> import zipfile, tempfile, os
    >>> from torch_liberator.deploysource import open_source
    >>> tmp = tempfile.TemporaryDirectory()
    >>> fpath = os.path.join(tmp.name, 'a.zip')
    >>> with zipfile.ZipFile(fpath, 'w') as zfile:
    ...     zfile.writestr('a/x.txt', 'hi')
    >>> path, inner, source = open_source(os.path.join(fpath, 'a', 'x.txt'))
    >>> inner, source.names(), bytes(source.read('a/x.txt', raw=True))
    ('a/x.txt', ['a/x.txt'], b'hi')
    >>> source.close()
    >>> tmp.cleanup()
"""
import os
import zipfile
from pathlib import Path

from torch_liberator.errors import (
    CheckpointFormatError, CheckpointNotFoundError, IntegrityError)

__all__ = ['open_source']


def open_source(fpath):
    """
    Open a deploy zip, a path inside one, or a directory for reading.

    Args:
        fpath (str | PathLike): the path.

    Returns:
        Tuple[Path, str | None, object]: the zip or directory path, the part
        of ``fpath`` inside the zip (or None), and a source with
        ``names()``, ``size(name)``, ``read(name, raw=False)`` and
        ``close()``.

    Raises:
        CheckpointNotFoundError: nothing exists at ``fpath``.
        CheckpointFormatError: the file is not a readable zip.

    Example:
        >>> import tempfile
        >>> from torch_liberator.deploysource import open_source
        >>> with tempfile.TemporaryDirectory() as dpath:
        ...     path, inner, source = open_source(dpath)
        ...     print(inner, source.names())
        None []
    """
    path, inner = _split_zip_path(fpath)
    source = _DirSource(path) if path.is_dir() else _ZipSource(path)
    return path, inner, source


def _split_zip_path(fpath):
    """
    Split ``a/b.zip/name/member`` into (``a/b.zip``, ``name/member``).
    Returns (fpath, None) for an existing file or directory.
    """
    path = Path(fpath)
    if path.exists():
        return path, None
    parts = path.parts
    for idx in range(len(parts) - 1, 0, -1):
        head = Path(*parts[:idx])
        if head.is_file():
            if zipfile.is_zipfile(head):
                return head, '/'.join(parts[idx:])
            break
    raise CheckpointNotFoundError(
        f'deploy file {os.fspath(fpath)!r} does not exist (nor is it a path '
        'inside an existing zip); check the path')


class _ZipSource:
    def __init__(self, fpath):
        self.fpath = fpath
        try:
            self.zfile = zipfile.ZipFile(fpath)
        except (zipfile.BadZipFile, OSError) as err:
            raise CheckpointFormatError(
                f'{os.fspath(fpath)!r} is not a readable zip file ({err}); '
                'is it a deploy file?') from err
        self.infos = {info.filename: info for info in self.zfile.infolist()
                      if not info.is_dir()}

    def names(self):
        return sorted(self.infos)

    def size(self, name):
        return self.infos[name].file_size

    def read(self, name, raw=False):
        info = self.infos[name]
        try:
            if raw and info.compress_type == zipfile.ZIP_STORED:
                # Stored member whose sha256 the caller checks: read it
                # straight into a writable buffer (no CRC pass, no copy).
                return self._read_stored(info)
            return self.zfile.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            raise IntegrityError(
                f'cannot read member {name!r} of {os.fspath(self.fpath)!r} '
                f'({err}); the zip is corrupt') from err

    def _read_stored(self, info):
        file = self.zfile.fp
        file.seek(info.header_offset)
        head = file.read(30)
        if len(head) != 30 or head[:4] != b'PK\x03\x04':
            raise zipfile.BadZipFile('bad local file header')
        skip = int.from_bytes(head[26:28], 'little') + int.from_bytes(head[28:30], 'little')
        file.seek(info.header_offset + 30 + skip)
        buf = bytearray(info.file_size)
        if file.readinto(buf) != info.file_size:
            raise EOFError('member is truncated')
        return buf

    def close(self):
        self.zfile.close()


class _DirSource:
    def __init__(self, dpath):
        self.fpath = dpath
        self._names = sorted(
            p.relative_to(dpath).as_posix() for p in dpath.rglob('*')
            if p.is_file() and '__pycache__' not in p.parts)

    def names(self):
        return self._names

    def size(self, name):
        return (self.fpath / name).stat().st_size

    def read(self, name, raw=False):
        with open(self.fpath / name, 'rb') as file:
            buf = bytearray(os.fstat(file.fileno()).st_size)
            file.readinto(buf)
        return buf

    def close(self):
        pass
