"""
Byte access to a deploy file: a zip, a path inside one, or a directory.

A source lists member names and sizes and reads members; it knows nothing of
manifests (see :mod:`torch_liberator.deployer._format`). ``read_hashed`` also
returns a member's sha256: a stored (not compressed) zip member or a file is
read in chunks straight into one writable buffer, each chunk hashed in a
worker thread while the next is read, skipping zipfile's CRC pass (the
sha256 supersedes it) and any copy.

Example:
    >>> import zipfile, tempfile, os
    >>> from torch_liberator.deployer._source import open_source
    >>> tmp = tempfile.TemporaryDirectory()
    >>> fpath = os.path.join(tmp.name, 'a.zip')
    >>> with zipfile.ZipFile(fpath, 'w') as zfile:
    ...     zfile.writestr('a/x.txt', 'hi')
    >>> path, inner, source = open_source(os.path.join(fpath, 'a', 'x.txt'))
    >>> inner, source.names(), bytes(source.read('a/x.txt'))
    ('a/x.txt', ['a/x.txt'], b'hi')
    >>> buf, digest = source.read_hashed('a/x.txt')
    >>> bytes(buf), digest[:8]
    (b'hi', '8f434346')
    >>> source.close()
    >>> tmp.cleanup()
"""
import hashlib
import os
import zipfile
from pathlib import Path

from torch_liberator.deployer._digest import Digester
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
        ``names()``, ``size(name)``, ``read(name)``, ``read_hashed(name)``
        (-> writable buffer, hex sha256), ``open_stored(name)`` (-> a new
        binary file positioned at the member's bytes, None for a
        compressed member) and ``close()``.

    Raises:
        CheckpointNotFoundError: nothing exists at ``fpath``.
        CheckpointFormatError: the file is not a readable zip.

    Example:
        >>> import tempfile
        >>> from torch_liberator.deployer._source import open_source
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

    def read(self, name):
        try:
            return self.zfile.read(self.infos[name])
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            raise self._corrupt(name, err) from err

    def read_hashed(self, name):
        info = self.infos[name]
        if info.compress_type != zipfile.ZIP_STORED:
            data = self.read(name)
            return data, hashlib.sha256(data).hexdigest()
        try:
            file = self.zfile.fp
            file.seek(self._data_offset(info, file))
            return _read_hashing(file, info.file_size)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            raise self._corrupt(name, err) from err

    def open_stored(self, name):
        info = self.infos[name]
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        file = open(self.fpath, 'rb')
        try:
            file.seek(self._data_offset(info, file))
        except (zipfile.BadZipFile, OSError) as err:
            file.close()
            raise self._corrupt(name, err) from err
        return file

    @staticmethod
    def _data_offset(info, file):
        file.seek(info.header_offset)
        head = file.read(30)
        if len(head) != 30 or head[:4] != b'PK\x03\x04':
            raise zipfile.BadZipFile('bad local file header')
        skip = (int.from_bytes(head[26:28], 'little')
                + int.from_bytes(head[28:30], 'little'))
        return info.header_offset + 30 + skip

    def _corrupt(self, name, err):
        return IntegrityError(
            f'cannot read member {name!r} of {os.fspath(self.fpath)!r} '
            f'({err}); the zip is corrupt')

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

    def read(self, name):
        return (self.fpath / name).read_bytes()

    def read_hashed(self, name):
        with open(self.fpath / name, 'rb') as file:
            return _read_hashing(file, os.fstat(file.fileno()).st_size)

    def open_stored(self, name):
        return open(self.fpath / name, 'rb')

    def close(self):
        pass


_CHUNK = 8 * 2 ** 20


def _read_hashing(file, size):
    """
    Read ``size`` bytes from ``file`` into a new writable buffer and sha256
    them, hashing each chunk in a worker thread while the next one is read.
    The buffer is allocated lazily (pages are mapped as they are filled).
    """
    import numpy as np
    buf = memoryview(np.empty(size, dtype=np.uint8)).cast('B')
    hasher = hashlib.sha256()
    if size <= _CHUNK:
        if file.readinto(buf) != size:
            raise EOFError('member is truncated')
        hasher.update(buf)
        return buf, hasher.hexdigest()
    worker = Digester(hasher.update)
    try:
        for start in range(0, size, _CHUNK):
            part = buf[start:start + _CHUNK]
            if file.readinto(part) != len(part):
                raise EOFError('member is truncated')
            worker.feed(part)
    finally:
        worker.finish()
    return buf, hasher.hexdigest()
