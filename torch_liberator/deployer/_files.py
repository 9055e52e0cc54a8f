"""
Files on disk, handled safely: every write atomic, names taken from files
reduced to plain names, paths inside zips split once, and only regular files
opened.

:func:`atomic_write` is the one way torch_liberator writes a file: a
temporary file ``.<name>.<pid>-<random>.tl.part`` in the destination's
folder, moved into place with :func:`os.replace`. A failure (SIGTERM too)
removes it; the temporary files of a killed writer are removed by the next
write to that path (:func:`remove_stale_parts`).

Example:
    >>> import os, tempfile
    >>> from torch_liberator.deployer._files import atomic_write, plain_name
    >>> tmp = tempfile.TemporaryDirectory()
    >>> fpath = atomic_write(os.path.join(tmp.name, plain_name('../a.txt')), lambda f: f.write(b'hi'))
    >>> fpath.read_bytes(), os.listdir(tmp.name)
    (b'hi', ['a.txt'])
    >>> tmp.cleanup()
"""
import contextlib
import glob
import os
import re
import secrets
import signal
import stat
import threading
import zipfile
from pathlib import Path

from torch_liberator.errors import CheckpointFormatError, DeployError

__all__ = [
    'atomic_write',
    'is_torch_archive',
    'open_regular',
    'plain_name',
    'remove_stale_parts',
    'split_zip_path',
]


def plain_name(text: str) -> str:
    """
    Reduce a name read from a file to a plain file name: no folder parts, no
    leading dot, only letters, digits, ``.``, ``_`` and ``-``.

    Example:
        >>> from torch_liberator.deployer._files import plain_name
        >>> plain_name('pycache__/../../outside/x'), plain_name('..'), plain_name('a b.zip')
        ('x', '_', 'a_b.zip')
    """
    name = re.sub(r'[^A-Za-z0-9._-]', '_', str(text).replace('\\', '/').rsplit('/', 1)[-1])
    return name.lstrip('.') or '_'


# --- paths -------------------------------------------------------------------

def split_zip_path(fpath):
    """
    Split a path that points inside a zip file (``a/b.zip/name/member``) into
    the zip and the part inside it.

    Args:
        fpath (str | PathLike): a path that does not exist as such.

    Returns:
        Tuple[Path, str] | None: the existing zip and the inner path, or None
        when no parent of ``fpath`` is a zip (a zip written by
        :func:`torch.save` does not count: nothing inside it is a file to
        read on its own).

    Example:
        >>> import os, tempfile, zipfile
        >>> from torch_liberator.deployer._files import split_zip_path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> zpath = os.path.join(tmp.name, 'a.zip')
        >>> zipfile.ZipFile(zpath, 'w').close()
        >>> outer, inner = split_zip_path(os.path.join(zpath, 'a', 'x.txt'))
        >>> outer.name, inner
        ('a.zip', 'a/x.txt')
        >>> split_zip_path(os.path.join(tmp.name, 'nothing', 'x')) is None
        True
        >>> tmp.cleanup()
    """
    path = Path(fpath)
    for head in path.parents:
        if head.exists():
            if head.is_file() and zipfile.is_zipfile(head) and not is_torch_archive(head):
                return head, path.relative_to(head).as_posix()
            return None
    return None


def is_torch_archive(path) -> bool:
    """
    True if the zip at ``path`` was written by :func:`torch.save`.

    Example:
        >>> import os, tempfile, torch
        >>> from torch_liberator.deployer._files import is_torch_archive
        >>> tmp = tempfile.TemporaryDirectory()
        >>> torch.save({}, os.path.join(tmp.name, 'a.pt'))
        >>> is_torch_archive(os.path.join(tmp.name, 'a.pt'))
        True
        >>> tmp.cleanup()
    """
    try:
        with zipfile.ZipFile(path) as zfile:
            return any(re.fullmatch(r'[^/]+/data\.pkl', n) for n in zfile.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


def open_regular(path):
    """
    Open a regular file for binary reading; anything else (a FIFO would
    block, a device never ends) is a
    :class:`~torch_liberator.errors.CheckpointFormatError`.

    Example:
        >>> import os, tempfile
        >>> from torch_liberator.deployer._files import open_regular
        >>> with tempfile.TemporaryDirectory() as dpath:
        ...     fifo = os.path.join(dpath, 'pipe')
        ...     os.mkfifo(fifo)
        ...     try:
        ...         open_regular(fifo)
        ...     except ValueError as err:
        ...         print(str(err)[-39:])
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


# --- writing -----------------------------------------------------------------

def _part_glob(fpath):
    return str(fpath.parent / f'.{glob.escape(fpath.name)}.*.tl.part')


def remove_stale_parts(fpath) -> list:
    """
    Remove the temporary files that a write to ``fpath`` left behind when its
    process was killed (``.<name>.<pid>-<random>.tl.part``, pid no longer
    running); those of a running process are kept.

    Returns:
        List[Path]: the files removed.

    Example:
        >>> import os, tempfile
        >>> from pathlib import Path
        >>> from torch_liberator.deployer._files import remove_stale_parts
        >>> tmp = Path(tempfile.mkdtemp())
        >>> (tmp / '.m.zip.999999999-ab.tl.part').write_bytes(b'x')
        1
        >>> (tmp / f'.m.zip.{os.getpid()}-cd.tl.part').write_bytes(b'x')
        1
        >>> [p.name for p in remove_stale_parts(tmp / 'm.zip')]
        ['.m.zip.999999999-ab.tl.part']
        >>> import shutil; shutil.rmtree(tmp)
    """
    fpath = Path(fpath)
    removed = []
    for part in sorted(glob.glob(_part_glob(fpath))):
        pid = Path(part).name[len(fpath.name) + 2:].split('-', 1)[0]
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(part)
            removed.append(Path(part))
    return removed


def _pid_alive(pid):
    if os.name != 'posix':
        return True  # no harmless liveness probe (os.kill(pid, 0) kills on Windows)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:
        return True  # another user's process
    return True


@contextlib.contextmanager
def _sigterm_raises():
    """In the main thread, with no handler of the caller's, SIGTERM raises
    SystemExit so that cleanup code runs."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def atomic_write(fpath, write) -> Path:
    """
    Write a file atomically: ``write(file)`` fills a temporary file in the
    same folder, which then replaces ``fpath`` (:func:`os.replace`). On any
    failure, SIGTERM included, the temporary file is removed and ``fpath`` is
    as it was; stale temporary files of killed writers are removed first. A
    file written over keeps its permission bits.

    Args:
        fpath (str | PathLike): the destination.
        write (Callable[[BinaryIO], None]): writes the content.

    Returns:
        Path: ``fpath``.

    Raises:
        DeployError: the folder does not exist or writing fails.

    Example:
        >>> import os, tempfile
        >>> from torch_liberator.deployer._files import atomic_write
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = atomic_write(os.path.join(tmp.name, 'a.txt'), lambda f: f.write(b'hi'))
        >>> fpath.read_bytes(), os.listdir(tmp.name)
        (b'hi', ['a.txt'])
        >>> tmp.cleanup()
    """
    fpath = Path(fpath)
    if not fpath.parent.is_dir():
        raise DeployError(
            f'cannot write {os.fspath(fpath)!r}: its folder does not exist; '
            'create it first')
    remove_stale_parts(fpath)
    tmp = fpath.parent / f'.{fpath.name}.{os.getpid()}-{secrets.token_hex(4)}.tl.part'
    with _sigterm_raises():
        try:
            with open(tmp, 'xb') as file:
                write(file)
            with contextlib.suppress(FileNotFoundError):
                old = os.stat(fpath)
                if stat.S_ISREG(old.st_mode):
                    os.chmod(tmp, stat.S_IMODE(old.st_mode))
            os.replace(tmp, fpath)
        except BaseException as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(err, OSError):
                raise DeployError(f'cannot write {os.fspath(fpath)!r}: {err}') from err
            raise
    return fpath
