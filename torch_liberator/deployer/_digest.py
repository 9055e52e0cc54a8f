"""
Digest bytes in a worker thread while the caller reads or writes them.

:mod:`hashlib` releases the GIL on large buffers, so a sha256 computed in
a worker thread runs at the same time as the file I/O of the thread that
feeds it. Deploy files use this both ways: the writer hashes the weights
while it writes them (and zipfile computes their CRC-32), and the reader
hashes what it has read while it reads on.

Example:
    >>> import hashlib
    >>> from torch_liberator.deployer._digest import Digester
    >>> hasher = hashlib.sha256()
    >>> worker = Digester(hasher.update)
    >>> for chunk in [b'ab', b'c']:
    ...     worker.feed(chunk)
    >>> worker.finish()
    >>> hasher.hexdigest() == hashlib.sha256(b'abc').hexdigest()
    True
"""
import queue
import threading

__all__ = ['Digester']


class Digester:
    """
    Pass buffers, in order, to ``update`` in a worker thread.

    The buffers must not change until :meth:`finish` returns (the callers
    feed views of tensors or of a buffer they fill and never reuse). At most
    ``max_queued`` buffers wait; :meth:`feed` blocks beyond that, which
    bounds the memory held when the buffers are copies.

    Args:
        update (Callable[[bytes-like], None]): e.g. ``hasher.update``.
        max_queued (int): how many buffers may wait for the worker.

    Example:
        >>> import zlib
        >>> from torch_liberator.deployer._digest import Digester
        >>> crc = [0]
        >>> worker = Digester(lambda b: crc.__setitem__(0, zlib.crc32(b, crc[0])))
        >>> worker.feed(b'hello')
        >>> worker.finish()
        >>> crc[0] == zlib.crc32(b'hello')
        True
    """

    def __init__(self, update, max_queued=64):
        self._update = update
        self._queue = queue.Queue(max_queued)
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._update(chunk)
                except BaseException as err:  # re-raised by finish()
                    self._error = err

    def feed(self, chunk):
        """
        Queue one buffer for ``update``.

        Example:
            >>> from torch_liberator.deployer._digest import Digester
            >>> seen = []
            >>> worker = Digester(seen.append)
            >>> worker.feed(b'x')
            >>> worker.finish()
            >>> seen
            [b'x']
        """
        self._queue.put(chunk)

    def finish(self):
        """
        Wait until every fed buffer is digested; re-raise the worker's error.

        Example:
            >>> from torch_liberator.deployer._digest import Digester
            >>> worker = Digester(lambda b: 1 / 0)
            >>> worker.feed(b'x')
            >>> try:
            ...     worker.finish()
            ... except ZeroDivisionError:
            ...     print('raised')
            raised
        """
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
