"""
Files on disk, handled safely: atomic writes, plain names, paths inside zips,
regular files only.

Temporary files are named ``.<name>.<pid>-<random>.tl.part`` beside their
destination and removed on failure (SIGTERM too); those a killed process
left are removed by the next write into that folder (:func:`remove_stale_parts`).

Example:
    >>> import os, tempfile
    >>> from torch_liberator.deployer._files import atomic_write, plain_name
    >>> tmp = tempfile.TemporaryDirectory()
    >>> fpath = os.path.join(tmp.name, plain_name('../a.txt'))
    >>> fpath = atomic_write(fpath, lambda f: f.write(b'hi'))
    >>> fpath.read_bytes(), os.listdir(tmp.name)
    (b'hi', ['a.txt'])
    >>> tmp.cleanup()
"""
import contextlib
import os
import re
import secrets
import signal
import stat
import threading
import zipfile
from pathlib import Path

from torch_liberator.errors import CheckpointFormatError, DeployError

__all__ = ['atomic_write', 'is_torch_archive', 'open_regular', 'plain_name',
           'remove_stale_parts', 'split_zip_path', 'temp_path']

_PART_RE = re.compile(r'\..+\.(\d+)-[0-9a-f]+\.tl\.part')


def plain_name(text: str) -> str:
    """
    A name read from a file reduced to a plain file name (no folders, no
    leading dot, only ``[A-Za-z0-9._-]``).

    Example:
        >>> from torch_liberator.deployer._files import plain_name
        >>> plain_name('pycache__/../../outside/x'), plain_name('..'), plain_name('a b.zip')
        ('x', '_', 'a_b.zip')
    """
    name = re.sub(r'[^A-Za-z0-9._-]', '_', str(text).replace('\\', '/').rsplit('/', 1)[-1])
    return name.lstrip('.') or '_'


def split_zip_path(fpath):
    """
    Split a path inside a zip (``a/b.zip/name/member``) into the zip and the
    inner path; None when no parent is a zip (a :func:`torch.save` archive
    does not count).

    Example:
        >>> from torch_liberator.deployer._files import split_zip_path
        >>> split_zip_path('/does/not/exist/x') is None
        True
    """
    path = Path(fpath)
    head = next((h for h in path.parents if h.exists()), None)
    if head is not None and head.is_file() and zipfile.is_zipfile(head) \
            and not is_torch_archive(head):
        return head, path.relative_to(head).as_posix()
    return None


def is_torch_archive(path) -> bool:
    """
    True if the zip at ``path`` was written by :func:`torch.save`.

    Example:
        >>> import os, tempfile, torch
        >>> from torch_liberator.deployer._files import is_torch_archive
        >>> with tempfile.TemporaryDirectory() as dpath:
        ...     torch.save({}, os.path.join(dpath, 'a.pt'))
        ...     is_torch_archive(os.path.join(dpath, 'a.pt'))
        True
    """
    try:
        with zipfile.ZipFile(path) as zfile:
            return any(re.fullmatch(r'[^/]+/data\.pkl', n) for n in zfile.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


def open_regular(path):
    """
    Open a regular file for binary reading; anything else (a FIFO would
    block) is a :class:`~torch_liberator.errors.CheckpointFormatError`.

    Example:
        >>> from torch_liberator.deployer._files import open_regular
        >>> try:
        ...     open_regular('/dev/null')
        ... except ValueError as err:
        ...     print(str(err)[-39:])
        give the path of a deploy zip or folder
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0))
    except OSError as err:
        raise CheckpointFormatError(f'cannot open {os.fspath(path)!r}: {err}') from err
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CheckpointFormatError(
            f'{os.fspath(path)!r} is not a regular file (a FIFO, device or '
            'socket?); give the path of a deploy zip or folder')
    return os.fdopen(fd, 'rb')


def remove_stale_parts(fpath) -> list:
    """
    Remove the temporary files that killed processes left in ``fpath``'s
    folder (those of running processes are kept); returns them.

    Example:
        >>> import os, tempfile
        >>> from pathlib import Path
        >>> from torch_liberator.deployer._files import remove_stale_parts
        >>> with tempfile.TemporaryDirectory() as dpath:
        ...     _ = (Path(dpath) / '.m.zip.999999999-ab.tl.part').write_bytes(b'x')
        ...     [p.name for p in remove_stale_parts(Path(dpath) / 'm.zip')]
        ['.m.zip.999999999-ab.tl.part']
    """
    removed = []
    with contextlib.suppress(OSError):
        for part in sorted(Path(fpath).parent.iterdir()):
            match = _PART_RE.fullmatch(part.name)
            if match and not _pid_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    part.unlink()
                    removed.append(part)
    return removed


def _pid_alive(pid):
    if os.name != 'posix':
        return True  # no harmless liveness probe (os.kill(pid, 0) kills on Windows)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:
        pass  # another user's process
    return True


@contextlib.contextmanager
def temp_path(fpath):
    """
    A fresh temporary path beside ``fpath`` (stale ones removed first),
    removed on exit; in the main thread SIGTERM raises SystemExit meanwhile
    so that the removal runs.

    Example:
        >>> import os, tempfile
        >>> from torch_liberator.deployer._files import temp_path
        >>> with tempfile.TemporaryDirectory() as dpath:
        ...     with temp_path(os.path.join(dpath, 'x')) as tmp:
        ...         _ = tmp.write_bytes(b'1')
        ...     os.listdir(dpath)
        []
    """
    fpath = Path(fpath)
    remove_stale_parts(fpath)
    tmp = fpath.parent / f'.{fpath.name}.{os.getpid()}-{secrets.token_hex(4)}.tl.part'
    own = (threading.current_thread() is threading.main_thread()
           and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
    if own:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if own:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def atomic_write(fpath, write) -> Path:
    """
    Write ``fpath`` atomically: ``write(file)`` fills a temporary file beside
    it that then replaces ``fpath`` (:func:`os.replace`), keeping its
    permission bits. On failure (a :class:`~torch_liberator.errors.DeployError`)
    ``fpath`` is as it was and no temporary file is left.

    Example:
        >>> import os, tempfile
        >>> from torch_liberator.deployer._files import atomic_write
        >>> with tempfile.TemporaryDirectory() as dpath:
        ...     fpath = atomic_write(os.path.join(dpath, 'a.txt'), lambda f: f.write(b'hi'))
        ...     fpath.read_bytes(), os.listdir(dpath)
        (b'hi', ['a.txt'])
    """
    fpath = Path(fpath)
    with temp_path(fpath) as tmp:
        try:
            with open(tmp, 'xb') as file:
                write(file)
            with contextlib.suppress(FileNotFoundError):
                old = os.stat(fpath)
                if stat.S_ISREG(old.st_mode):
                    os.chmod(tmp, stat.S_IMODE(old.st_mode))
            os.replace(tmp, fpath)
        except OSError as err:
            raise DeployError(f'cannot write {os.fspath(fpath)!r}: {err}') from err
    return fpath
