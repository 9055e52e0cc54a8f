"""
Write a deploy zip: atomically, reproducibly, hashing while writing.

The layout is described in :mod:`torch_liberator.deployer._format`, which reads
it (and re-exports :func:`write_deploy_zip`). Every member goes under one
folder named after the zip; ``manifest.json`` comes last and records the
sha256 and size of every other member. Members are sorted and time-stamped
1980-01-01; the zip is written to a hidden ``.part`` file in the destination
folder and moved into place atomically.

Example:
    >>> import tempfile, zipfile, os
    >>> from torch_liberator.deployer._writer import write_deploy_zip
    >>> tmp = tempfile.TemporaryDirectory()
    >>> fpath = write_deploy_zip(os.path.join(tmp.name, 'w.zip'), {'a.txt': b'a'}, {})
    >>> zipfile.ZipFile(fpath).namelist()
    ['w/a.txt', 'w/manifest.json']
    >>> tmp.cleanup()
"""
import hashlib
import json
import os
import secrets
import sys
import zipfile
from pathlib import Path, PurePosixPath

from torch_liberator.deployer._digest import Digester
from torch_liberator.errors import DeployError

__all__ = [
    'FORMAT_NAME',
    'FORMAT_VERSION',
    'LEGACY_WEIGHTS_FNAME',
    'MANIFEST_FNAME',
    'TRAIN_INFO_FNAME',
    'WEIGHTS_FNAME',
    'sha256_bytes',
    'write_deploy_zip',
]

FORMAT_NAME = 'torch_liberator.deploy'
FORMAT_VERSION = 1
MANIFEST_FNAME = 'manifest.json'
WEIGHTS_FNAME = 'weights.safetensors'
TRAIN_INFO_FNAME = 'train_info.json'
LEGACY_WEIGHTS_FNAME = 'deploy_snapshot.pt'

# Fixed zip metadata so that equal content gives equal bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def sha256_bytes(data):
    """
    Hex sha256 digest of some bytes.

    Example:
        >>> from torch_liberator.deployer._format import sha256_bytes
        >>> sha256_bytes(b'')[:16]
        'e3b0c44298fc1c14'
    """
    return hashlib.sha256(data).hexdigest()


def _zipinfo(arcname, compress):
    info = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


def write_deploy_zip(fpath, files, manifest):
    """
    Write a deploy zip atomically and reproducibly.

    Every file goes under the folder ``<stem of fpath>/``; ``manifest.json``
    gets a ``members`` entry (sha256 and size of each file) and the format
    name and version; it is written last. Members are sorted and time-stamped
    1980-01-01, so equal
    inputs give byte-identical zips. The zip is written to a hidden file in
    the destination folder and moved into place atomically, so a
    failure never leaves a half-written file (and nothing goes to the temp
    dir).

    Args:
        fpath (str | PathLike): destination ``.zip`` path.
        files (Dict[str, bytes | WeightsPayload]): relative member name ->
            content; a :class:`~torch_liberator.deployer._weights.WeightsPayload`
            is streamed and stored uncompressed.
        manifest (dict): JSON-able fields to store in ``manifest.json``.

    Returns:
        Path: ``fpath``.

    Raises:
        DeployError: if the destination folder does not exist or a member
            name is unsafe.

    Example:
        >>> import ubelt as ub
        >>> from torch_liberator.deployer._format import write_deploy_zip
        >>> dpath = ub.Path.appdir('torch_liberator/tests/deployfile').ensuredir()
        >>> a = write_deploy_zip(dpath / 'a.zip', {'x.txt': b'1'}, {'k': 1}).read_bytes()
        >>> b = write_deploy_zip(dpath / 'a.zip', {'x.txt': b'1'}, {'k': 1}).read_bytes()
        >>> a == b
        True
    """
    fpath = Path(fpath)
    if not fpath.parent.is_dir():
        raise DeployError(
            f'cannot write deploy file {os.fspath(fpath)!r}: its folder does '
            'not exist; create it first')
    for rel in files:
        _check_member_name(rel)
    tmp = fpath.parent / f'.{fpath.name}.{secrets.token_hex(6)}.part'
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, 'wb') as file, zipfile.ZipFile(file, 'w') as zfile:
            members = _write_members(zfile, fpath.stem, files)
            manifest = dict(manifest)
            manifest['format'] = FORMAT_NAME
            manifest['format_version'] = FORMAT_VERSION
            manifest['name'] = fpath.stem
            manifest['members'] = members
            text = json.dumps(manifest, indent=2, sort_keys=True) + '\n'
            # the manifest goes last: it holds the hashes of what precedes it
            zfile.writestr(_zipinfo(f'{fpath.stem}/{MANIFEST_FNAME}', True),
                           text.encode('utf8'), compresslevel=6)
        _move_into_place(tmp, fpath)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise DeployError(
                f'cannot write deploy file {os.fspath(fpath)!r}: {err}') from err
        raise
    return fpath


def _move_into_place(tmp, fpath):
    """
    Atomically give ``tmp`` the name ``fpath``.

    Over an existing file, ext4 (``auto_da_alloc``) writes the new file's
    data out before a rename returns, which costs about as much as writing
    the file again. On Linux, swapping the two names with
    ``renameat2(RENAME_EXCHANGE)`` and deleting the old file is just as
    atomic for readers and skips that forced write; the durability after a
    power cut is then that of :func:`torch.save` over a file. Anywhere the
    swap is not supported this is :func:`os.replace`.
    """
    if fpath.is_file() and _rename_exchange(tmp, fpath):
        try:
            os.unlink(tmp)  # now the previous file
        except OSError:
            pass
        return
    os.replace(tmp, fpath)


def _rename_exchange(src, dst):
    """True if ``renameat2(RENAME_EXCHANGE)`` swapped the two names."""
    if not sys.platform.startswith('linux'):
        return False
    import ctypes
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc >= 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst),
                     rename_exchange) == 0


def _check_member_name(rel):
    parts = PurePosixPath(rel).parts
    if (not parts or rel.startswith('/') or '\\' in rel
            or any(p in ('', '.', '..') for p in parts) or rel == MANIFEST_FNAME):
        raise DeployError(
            f'member name {rel!r} is not allowed in a deploy file; use a plain '
            'relative name other than manifest.json')


def _write_members(zfile, name, files):
    members = {}
    for rel in sorted(files):
        content = files[rel]
        info = _zipinfo(f'{name}/{rel}', compress=isinstance(
            content, (bytes, bytearray, memoryview)))
        if info.compress_type == zipfile.ZIP_DEFLATED:
            data = bytes(content)
            zfile.writestr(info, data, compresslevel=6)
            members[rel] = {'sha256': sha256_bytes(data), 'size': len(data)}
        else:  # a streamed payload (WeightsPayload), stored as is
            digest = _write_stored(zfile, info, content)
            members[rel] = {'sha256': digest, 'size': content.size}
    return members


def _write_stored(zfile, info, payload):
    """
    Stream a payload into a stored zip member; its sha256 is computed in a
    worker thread while the main thread writes (zipfile computes the CRC-32
    as it writes). Two busy threads, not three, so on a two-core machine
    the hash is never the one waiting for a core.
    """
    info.file_size = payload.size
    hasher = hashlib.sha256()
    with zfile.open(info, 'w', force_zip64=payload.size > 2 ** 31) as dst:
        worker = Digester(hasher.update)
        try:
            for chunk in payload.chunks():
                worker.feed(chunk)
                dst.write(chunk)
        finally:
            worker.finish()
    return hasher.hexdigest()
