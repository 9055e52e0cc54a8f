"""
Stream a state dict to and from the safetensors format without copies.

The deploy file stores its weights as safetensors: a JSON header (dtype,
shape and byte range of each tensor) followed by the raw tensor bytes. That
format cannot carry code, so reading it never unpickles anything. This
module writes the bytes tensor by tensor (no full in-memory copy, so hashing
and writing can overlap) and reads them back as tensors that view one
buffer (no per-tensor copy).

Tensors that share storage (tied weights) are stored once; the header
metadata records the aliases and :func:`decode_weights` restores them as the
same tensor object.

Notes:
    Layout follows https://github.com/huggingface/safetensors (format v1):
    8-byte little-endian header length, JSON header padded with spaces to a
    multiple of 8, then the tensors back to back, largest element size first
    so every tensor is aligned. Writing and reading are O(total bytes).

Example:
    >>> import torch
    >>> from torch_liberator.deployer._weights import WeightsPayload, decode_weights
    >>> payload = WeightsPayload({'a.weight': torch.eye(2), 'a.n': torch.tensor(3)})
    >>> out = decode_weights(payload.to_bytes())
    >>> out['a.weight'].tolist(), int(out['a.n'])
    ([[1.0, 0.0], [0.0, 1.0]], 3)
"""
import json

import io
from collections import OrderedDict

from torch_liberator.errors import CheckpointFormatError, DeployError, UnsafeCheckpointError

__all__ = ['WeightsPayload', 'decode_weights', 'read_legacy_weights', 'read_weights']

_ALIAS_KEY = '__torch_liberator_aliases__'
_VERSIONS_KEY = '__torch_liberator_module_metadata__'
# Large tensors are yielded as views of at most _CHUNK bytes; small ones
# (norm layers' vectors, counters) are joined into buffers of about _SMALL
# bytes, so the writer and its hashing threads handle few, large buffers.
_CHUNK = 16 * 2 ** 20
_SMALL = 2 ** 20


def _module_versions(state_dict):
    metadata = getattr(state_dict, '_metadata', None)
    if not metadata:
        return None
    try:
        return json.dumps(dict(metadata), sort_keys=True)
    except (TypeError, ValueError):
        return None  # not plain data: leave it out


_DTYPE_NAMES = {
    'float64': 'F64', 'float32': 'F32', 'float16': 'F16', 'bfloat16': 'BF16',
    'int64': 'I64', 'int32': 'I32', 'int16': 'I16', 'int8': 'I8',
    'uint8': 'U8', 'bool': 'BOOL', 'uint16': 'U16', 'uint32': 'U32',
    'uint64': 'U64', 'float8_e4m3fn': 'F8_E4M3', 'float8_e5m2': 'F8_E5M2',
    'complex64': 'C64',
}


def _dtype_tables():
    import torch
    to_name = {}
    from_name = {}
    for tname, sname in _DTYPE_NAMES.items():
        dtype = getattr(torch, tname, None)
        if dtype is not None:
            to_name[dtype] = sname
            from_name[sname] = dtype
    return to_name, from_name


class WeightsPayload:
    """
    A state dict laid out as safetensors bytes, ready to be streamed.

    Args:
        state_dict (Dict[str, Tensor]): the tensors (any device; they are
            copied to the CPU only if they are not there already).

    Attributes:
        size (int): total number of bytes :meth:`chunks` yields.
        aliases (Dict[str, str]): key -> the key whose tensor it shares.

    Raises:
        DeployError: a value is not a tensor or has an unsupported dtype.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._weights import WeightsPayload
        >>> w = torch.ones(3)
        >>> payload = WeightsPayload({'x': w, 'y': w})
        >>> payload.aliases, payload.size == len(payload.to_bytes())
        ({'y': 'x'}, True)
    """

    def __init__(self, state_dict):
        import torch
        to_name, _ = _dtype_tables()
        seen = {}
        self.aliases = {}
        entries = []
        for key in sorted(state_dict):
            value = state_dict[key]
            if not isinstance(value, torch.Tensor):
                raise DeployError(
                    f'state dict value {key!r} is a {type(value).__name__}, '
                    'not a tensor; a deploy file stores tensors only (put '
                    'other data in train_info)')
            if value.dtype not in to_name:
                raise DeployError(
                    f'state dict value {key!r} has dtype {value.dtype}, which '
                    f'the deploy format cannot store; supported: '
                    f'{sorted(str(d) for d in to_name)}')
            value = value.detach()
            if value.numel():
                ident = (value.device, value.untyped_storage().data_ptr(),
                         value.storage_offset(), tuple(value.shape),
                         tuple(value.stride()), value.dtype)
                if ident in seen:
                    self.aliases[key] = seen[ident]
                    continue
                seen[ident] = key
            entries.append((key, value))
        # largest element first keeps every tensor aligned
        entries.sort(key=lambda kv: (-kv[1].element_size(), kv[0]))
        header = {}
        offset = 0
        self._tensors = []
        for key, value in entries:
            nbytes = value.numel() * value.element_size()
            header[key] = {'dtype': to_name[value.dtype],
                           'shape': list(value.shape),
                           'data_offsets': [offset, offset + nbytes]}
            offset += nbytes
            self._tensors.append(value)
        meta = {}
        if self.aliases:
            meta[_ALIAS_KEY] = json.dumps(self.aliases, sort_keys=True)
        # per-module state-dict versions (state_dict._metadata), which some
        # modules' _load_from_state_dict require
        versions = _module_versions(state_dict)
        if versions:
            meta[_VERSIONS_KEY] = versions
        if meta:
            header['__metadata__'] = meta
        text = json.dumps(header, separators=(',', ':'), sort_keys=True)
        text += ' ' * (-(8 + len(text)) % 8)
        raw = text.encode('utf8')
        self._head = len(raw).to_bytes(8, 'little') + raw
        self.size = len(self._head) + offset

    @property
    def num_tensors(self):
        """
        int: how many tensors are stored (aliases not counted).

        Example:
            >>> import torch
            >>> from torch_liberator.deployer._weights import WeightsPayload
            >>> w = torch.ones(1)
            >>> WeightsPayload({'a': w, 'b': w, 'c': torch.zeros(1)}).num_tensors
            2
        """
        return len(self._tensors)

    def chunks(self):
        """
        Yield the safetensors bytes as buffers of at most 16 MiB: views of
        the tensors' memory, with small tensors joined into one buffer.

        Example:
            >>> import torch
            >>> from torch_liberator.deployer._weights import WeightsPayload
            >>> payload = WeightsPayload({'x': torch.zeros(5)})
            >>> sum(len(c) for c in payload.chunks()) == payload.size
            True
        """
        import torch
        yield self._head
        small = []  # tensors under _SMALL bytes go out joined
        small_bytes = 0
        for value in self._tensors:
            if not value.numel():
                continue
            value = value.to('cpu').contiguous()
            view = memoryview(value.reshape(-1).view(torch.uint8).numpy())
            if len(view) < _SMALL:
                small.append(view)
                small_bytes += len(view)
                if small_bytes >= _SMALL:
                    yield b''.join(small)
                    small, small_bytes = [], 0
                continue
            if small:
                yield b''.join(small)
                small, small_bytes = [], 0
            for start in range(0, len(view), _CHUNK):
                yield view[start:start + _CHUNK]
        if small:
            yield b''.join(small)

    def to_bytes(self):
        """
        All the bytes at once (for small state dicts and tests).

        Example:
            >>> import torch
            >>> from torch_liberator.deployer._weights import WeightsPayload
            >>> WeightsPayload({}).to_bytes()[:8]
            b'\\x08\\x00\\x00\\x00\\x00\\x00\\x00\\x00'
        """
        return b''.join(bytes(c) for c in self.chunks())


def decode_weights(buf, device=None):
    """
    Read safetensors bytes into tensors that view ``buf`` (no copy on CPU).

    Args:
        buf (bytes-like): the whole safetensors data. A writable buffer
            (bytearray, writable memoryview) gives tensors that view it
            without a copy; read-only bytes are copied once.
        device (str | torch.device | None): where to put the tensors
            (default: CPU).

    Returns:
        Dict[str, Tensor]: sorted by key (an OrderedDict that carries the
        per-module ``_metadata`` versions, like a ``state_dict()``).

    Raises:
        CheckpointFormatError: ``buf`` is not valid safetensors data.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._weights import WeightsPayload, decode_weights
        >>> out = decode_weights(bytearray(WeightsPayload({'b': torch.arange(4).view(2, 2)}).to_bytes()))
        >>> out['b'].tolist()
        [[0, 1], [2, 3]]
        >>> try:
        ...     decode_weights(b'not safetensors')
        ... except ValueError as err:
        ...     print(type(err).__name__)
        CheckpointFormatError
    """
    import torch
    if memoryview(buf).readonly:
        buf = bytearray(buf)  # tensors must be able to write to their memory
    with _format_errors():
        hlen = int.from_bytes(buf[:8], 'little')
        if len(buf) < 8 or 8 + hlen > len(buf):
            raise ValueError(f'header length {hlen} exceeds the data')
        entries, metadata = _parse_header(bytes(buf[8:8 + hlen]), len(buf) - 8 - hlen)
        base = 8 + hlen
        out = {}
        for key, dtype, shape, begin, end in entries:
            if begin == end:
                out[key] = torch.empty(shape, dtype=dtype)
            else:
                numel = (end - begin) // dtype.itemsize
                out[key] = torch.frombuffer(
                    buf, dtype=dtype, count=numel, offset=base + begin).view(shape)
    return _finish(out, metadata, device)


def read_weights(file, size, feed=None, device=None):
    """
    Read safetensors data of ``size`` bytes from a binary file, straight
    into one new tensor per entry (as :func:`torch.load` makes them; no
    intermediate buffer), passing every byte, in order, to ``feed``.

    Args:
        file (BinaryIO): positioned at the start of the data.
        size (int): its length in bytes.
        feed (Callable | None): called with each buffer once it is read
            (e.g. a hashing thread's ``feed``); the buffer is not changed
            afterwards.
        device (str | torch.device | None): where to put the tensors.

    Returns:
        Dict[str, Tensor]: as :func:`decode_weights` returns.

    Raises:
        CheckpointFormatError: the data is not valid safetensors data.

    Example:
        >>> import io, hashlib, torch
        >>> from torch_liberator.deployer._weights import WeightsPayload, read_weights
        >>> data = WeightsPayload({'w': torch.arange(3.)}).to_bytes()
        >>> hasher = hashlib.sha256()
        >>> out = read_weights(io.BytesIO(data), len(data), hasher.update)
        >>> out['w'].tolist(), hasher.digest() == hashlib.sha256(data).digest()
        ([0.0, 1.0, 2.0], True)
    """
    import torch
    feed = feed or (lambda buf: None)
    with _format_errors():
        head = _read_exactly(file, 8)
        hlen = int.from_bytes(head, 'little')
        if size < 8 or 8 + hlen > size:
            raise ValueError(f'header length {hlen} exceeds the data')
        raw = _read_exactly(file, hlen)
        feed(head)
        feed(raw)
        entries, metadata = _parse_header(raw, size - 8 - hlen)
        out = {}
        for key, dtype, shape, begin, end in entries:  # in file order
            tensor = torch.empty(shape, dtype=dtype)
            out[key] = tensor
            if begin == end:
                continue
            view = memoryview(tensor.reshape(-1).view(torch.uint8).numpy())
            for start in range(0, end - begin, _CHUNK):
                part = view[start:start + _CHUNK]
                if file.readinto(part) != len(part):
                    raise ValueError('the data is truncated')
                feed(part)
    return _finish(out, metadata, device)


def _read_exactly(file, count):
    data = file.read(count)
    if len(data) != count:
        raise ValueError('the data is truncated')
    return data


class _format_errors:
    """Turn what malformed data raises into CheckpointFormatError."""

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if kind is not None and issubclass(kind, (ValueError, KeyError, TypeError, RuntimeError)):
            if isinstance(err, CheckpointFormatError):
                return False
            raise CheckpointFormatError(
                f'the weights are not valid safetensors data ({err}); the deploy '
                'file is corrupt, re-deploy the model') from err
        return False


def _parse_header(raw, data_size):
    """
    Validate a safetensors JSON header against the size of the data that
    follows it; returns ([(key, dtype, shape, begin, end)] in file order,
    metadata). The byte ranges must tile the data exactly.
    """
    _, from_name = _dtype_tables()
    header = json.loads(raw)
    if not isinstance(header, dict):
        raise ValueError('header is not a JSON object')
    metadata = header.pop('__metadata__', None) or {}
    if not isinstance(metadata, dict):
        raise ValueError('__metadata__ is not a JSON object')
    entries = []
    for key, entry in header.items():
        dtype = from_name[entry['dtype']]
        shape = [int(s) for s in entry['shape']]
        begin, end = (int(x) for x in entry['data_offsets'])
        numel = 1
        for dim in shape:
            if dim < 0:
                raise ValueError(f'tensor {key!r} has a negative dimension')
            numel *= dim
        if end - begin != numel * dtype.itemsize or begin < 0:
            raise ValueError(f'tensor {key!r} has an inconsistent byte range')
        entries.append((key, dtype, shape, begin, end))
    entries.sort(key=lambda e: (e[3], e[4]))
    pos = 0
    for _, _, _, begin, end in entries:
        if begin != pos:
            raise ValueError('tensor byte ranges overlap or leave gaps')
        pos = end
    if pos != data_size:
        raise ValueError('trailing or missing bytes after the tensors')
    return entries, metadata


def _finish(out, metadata, device):
    """Move to ``device``, restore aliases and module versions, sort."""
    with _format_errors():
        aliases = json.loads(metadata.get(_ALIAS_KEY, '{}'))
        versions = metadata.get(_VERSIONS_KEY)
        versions = json.loads(versions) if versions else None
    if device is not None:
        out = {key: value.to(device) for key, value in out.items()}
    for key, target in aliases.items():
        if target not in out:
            raise CheckpointFormatError(
                f'weights alias {key!r} -> {target!r} names a missing tensor')
        out[key] = out[target]
    result = OrderedDict(sorted(out.items()))
    if versions:
        result._metadata = versions
    return result


def read_legacy_weights(data, fpath, device=None):
    """
    Read the ``deploy_snapshot.pt`` of a torch_liberator 0.2 deploy file
    with ``torch.load(weights_only=True)`` (never arbitrary unpickling),
    unwrapping ``model_state_dict`` / ``state_dict``.

    Args:
        data (bytes): the file's bytes.
        fpath (str | PathLike): where it came from (for messages).
        device (str | torch.device | None): ``map_location``.

    Returns:
        Dict[str, Tensor]

    Raises:
        UnsafeCheckpointError: reading it would need arbitrary unpickling.
        CheckpointFormatError: it is not a state dict of tensors.

    Example:
        >>> import io, torch
        >>> from torch_liberator.deployer._weights import read_legacy_weights
        >>> buf = io.BytesIO()
        >>> torch.save({'model_state_dict': {'w': torch.ones(1)}, 'epoch': 2}, buf)
        >>> read_legacy_weights(buf.getvalue(), 'old.zip')['w'].tolist()
        [1.0]
    """
    import pickle
    import torch
    try:
        state = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f'the weights in {str(fpath)!r} can only be read by '
            'unpickling arbitrary objects, which can run code; if you trust '
            'the file, extract it and load it with torch.load(weights_only=False) '
            f'yourself ({err})') from err
    except Exception as err:
        raise CheckpointFormatError(
            f'cannot read the weights in {str(fpath)!r}: {err}') from err
    for key in ('model_state_dict', 'state_dict'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointFormatError(
            f'the weights in {str(fpath)!r} are not a state dict of '
            'tensors')
    return state
