"""
The deploy file format, read and written without running any code.

A deploy zip holds one folder ``<name>/``: ``manifest.json`` (written last:
format, version, every other member's sha256 and size, the model's class,
code member and init arguments, the weights' aliases, versions), the model
code ``<Class>_<hash>.py``, ``weights.safetensors`` (stored uncompressed; tied
weights once, ``weights.aliases`` names the keys sharing them) and optionally
``train_info.json`` and ``example.safetensors``; members not listed are
refused, and the folder unzipped reads the same. torch_liberator 0.2 files
(``deploy_snapshot.pt`` and one ``.py``) are read with a warning. Every byte is
hostile until its hash is checked, reads are bounded and go through one
handle, and every failure is a :class:`~torch_liberator.errors.LiberatorError`.

Example:
    >>> import os, tempfile, torch
    >>> from torch_liberator.deployer._format import DeployFile, encode_weights, write_deploy_zip
    >>> tmp = tempfile.TemporaryDirectory()
    >>> tensors, weights = encode_weights({'w': torch.ones(2)})
    >>> manifest = {'model': {'class': 'M', 'code': 'm.py'}, 'weights': weights}
    >>> fpath = os.path.join(tmp.name, 'demo.zip')
    >>> fpath = write_deploy_zip(fpath, {'m.py': b''}, manifest, tensors)
    >>> with DeployFile(fpath) as dfile:
    ...     dfile.verify()
    ...     print(sorted(dfile.members), dfile.read_state_dict()['w'].tolist())
    ['m.py', 'manifest.json', 'weights.safetensors'] [1.0, 1.0]
    >>> tmp.cleanup()
"""
import concurrent.futures
import hashlib
import io
import json
import os
import re
import shutil
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

from torch_liberator.deployer._files import (
    atomic_write, open_regular, split_zip_path, temp_path)
from torch_liberator.errors import (
    CheckpointFormatError, CheckpointNotFoundError, DeployError,
    IntegrityError, UnsafeCheckpointError)

__all__ = ['FORMAT_NAME', 'FORMAT_VERSION', 'LEGACY_WEIGHTS_FNAME', 'MANIFEST_FNAME',
           'MAX_TEXT_BYTES', 'TRAIN_INFO_FNAME', 'WEIGHTS_FNAME', 'DeployFile',
           'encode_weights', 'read_deploy_state_dict', 'write_deploy_zip']

FORMAT_NAME = 'torch_liberator.deploy'
FORMAT_VERSION = 2
MANIFEST_FNAME = 'manifest.json'
WEIGHTS_FNAME = 'weights.safetensors'
TRAIN_INFO_FNAME = 'train_info.json'
LEGACY_WEIGHTS_FNAME = 'deploy_snapshot.pt'
#: the largest member other than the weights a reader accepts, decompressed
MAX_TEXT_BYTES = 64 * 2 ** 20

_MAX_INFLATE_RATIO = 100  # more is a zip bomb (deflate reaches 1032:1), not weights
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError,
               NotImplementedError, struct.error, OverflowError, KeyError)
_HEX64 = re.compile(r'[0-9a-f]{64}')


def encode_weights(state_dict):
    """
    The tensors to store and the manifest's ``weights`` entry: a key whose
    tensor is the same view of the same memory as an earlier key's (tied
    weights) becomes an alias; other tensors sharing memory are copied.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._format import encode_weights
        >>> w = torch.ones(3)
        >>> tensors, entry = encode_weights({'x': w, 'y': w})
        >>> entry['aliases'], entry['tensors']
        ({'y': 'x'}, 1)
    """
    import torch
    tensors, aliases, seen, storages = {}, {}, {}, set()
    for key in sorted(state_dict):
        value = state_dict[key]
        if not isinstance(value, torch.Tensor):
            raise DeployError(
                f'state dict value {key!r} is a {type(value).__name__}, not a tensor; '
                'a deploy file stores tensors only (put other data in train_info)')
        value = value.detach()
        if value.numel():
            ptr = (value.device, value.untyped_storage().data_ptr())
            ident = ptr + (value.storage_offset(), value.stride(), value.shape, value.dtype)
            if ident in seen:
                aliases[key] = seen[ident]
                continue
            seen[ident] = key
            if ptr in storages or not value.is_contiguous():
                value = value.contiguous().clone()  # one storage per stored key
            storages.add(ptr)
        tensors[key] = value.to('cpu')
    versions = getattr(state_dict, '_metadata', None)
    try:
        versions = json.loads(json.dumps(dict(versions))) if versions else None
    except (TypeError, ValueError):
        versions = None  # not plain data: leave it out
    return tensors, {'file': WEIGHTS_FNAME, 'format': 'safetensors', 'tensors': len(tensors),
                     'aliases': aliases, 'module_versions': versions}


def _zipinfo(arcname, stored):
    # fixed metadata (dated 1980): equal content gives equal bytes
    info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


def write_deploy_zip(fpath, files, manifest, tensors) -> Path:
    """
    Write a deploy zip atomically and reproducibly: ``files`` (name -> bytes)
    and ``tensors`` as ``weights.safetensors`` (through a temporary file
    beside ``fpath``, hashed by a worker meanwhile) under ``<stem>/``, then
    ``manifest`` with every member's sha256 and size. An existing folder
    ``fpath`` gets ``deploy_<code stem>_<weights hash>.zip``.

    Example:
        >>> import os, tempfile, zipfile
        >>> from torch_liberator.deployer._format import write_deploy_zip
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = write_deploy_zip(os.path.join(tmp.name, 'w.zip'), {'a.txt': b'a'}, {}, {})
        >>> zipfile.ZipFile(fpath).namelist()
        ['w/a.txt', 'w/weights.safetensors', 'w/manifest.json']
        >>> tmp.cleanup()
    """
    from safetensors.torch import save_file
    fpath = Path(fpath)
    folder = fpath if fpath.is_dir() else fpath.parent
    if not fpath.is_dir() and fpath.suffix.lower() != '.zip':
        raise DeployError(f'deploy destination {os.fspath(fpath)!r} must end with .zip '
                          '(or be an existing directory)')
    if not folder.is_dir():
        raise DeployError(f'cannot write {os.fspath(fpath)!r}: its folder does not exist; '
                          'create it first')
    with temp_path(folder / WEIGHTS_FNAME) as wpath, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            save_file(tensors, wpath)
        except Exception as err:  # safetensors raises several types
            raise DeployError(
                f'cannot store the state dict as safetensors ({type(err).__name__}: '
                f'{err}); convert unsupported tensors (dtype, layout) first') from err
        sizes = {rel: len(data) for rel, data in files.items()}
        sizes[WEIGHTS_FNAME] = os.path.getsize(wpath)
        digests = {rel: pool.submit(_sha256, data) for rel, data in files.items()}
        digests[WEIGHTS_FNAME] = pool.submit(_sha256, wpath)
        if fpath.is_dir():
            stem = str(manifest.get('model', {}).get('code', 'model'))[:-3]
            fpath = fpath / f'deploy_{stem}_{digests[WEIGHTS_FNAME].result()[:12]}.zip'

        def write(file):
            with zipfile.ZipFile(file, 'w') as zfile:
                for rel in sorted(sizes):
                    info = _zipinfo(f'{fpath.stem}/{rel}', rel == WEIGHTS_FNAME)
                    if rel in files:
                        zfile.writestr(info, files[rel])
                        continue
                    info.file_size = sizes[rel]
                    with open(wpath, 'rb') as src, zfile.open(info, 'w') as dst:
                        shutil.copyfileobj(src, dst, 2 ** 22)
                members = {rel: {'sha256': digests[rel].result(), 'size': size}
                           for rel, size in sizes.items()}
                text = json.dumps({**manifest, 'format': FORMAT_NAME,
                                   'format_version': FORMAT_VERSION, 'name': fpath.stem,
                                   'members': members}, indent=2, sort_keys=True)
                zfile.writestr(_zipinfo(f'{fpath.stem}/{MANIFEST_FNAME}', False),
                               (text + '\n').encode('utf8'))

        return atomic_write(fpath, write)


def _sha256(data):
    # the hex sha256 of bytes, of a file's content (path) or of an open binary file
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    if isinstance(data, (str, os.PathLike)):
        with open(data, 'rb') as file:
            return _sha256(file)
    if hasattr(hashlib, 'file_digest'):  # Python >= 3.11
        return hashlib.file_digest(data, 'sha256').hexdigest()
    hasher = hashlib.sha256()
    while chunk := data.read(2 ** 20):
        hasher.update(chunk)
    return hasher.hexdigest()


def _manifest_problem(manifest):
    # what makes a parsed (hostile) manifest unusable; None if nothing
    def is_map(value, check):
        return isinstance(value, dict) and all(
            isinstance(k, str) and check(v) for k, v in value.items())

    def is_entry(entry):
        return (isinstance(entry, dict) and isinstance(entry.get('sha256'), str)
                and _HEX64.fullmatch(entry['sha256']) is not None
                and type(entry.get('size')) is int and entry['size'] >= 0)

    model, weights = manifest.get('model'), manifest.get('weights')
    members = manifest.get('members')
    listed = set(members) - {MANIFEST_FNAME} if isinstance(members, dict) else set()
    code = model.get('code') if isinstance(model, dict) else None
    file = weights.get('file') if isinstance(weights, dict) else None
    if not is_map(members, is_entry):
        return "'members' must map names to {'sha256': hex, 'size': int}"
    if not (isinstance(code, str) and code in listed):
        return "'model' must name the 'code' member, one of the listed members"
    if not (isinstance(file, str) and file in listed and file != code
            and is_map(weights.get('aliases', {}), lambda v: isinstance(v, str))
            and is_map(weights.get('module_versions') or {}, lambda v: isinstance(v, dict))):
        return "'weights' must name its 'file' (a listed member), 'aliases' and 'module_versions'"
    return None


def _load_json(data, what):
    try:
        return json.loads(bytes(data).decode('utf8'))
    except (ValueError, RecursionError) as err:  # deep nesting too
        raise CheckpointFormatError(
            f'{what} is not valid JSON ({type(err).__name__}: {str(err)[:200]}); '
            'the deploy file is corrupt') from err


class DeployFile:
    """
    A deploy zip (a path inside one, or an unzipped folder) read through one
    handle; runs nothing. Opening checks the layout and the manifest;
    :meth:`verify` every member's size and sha256. Attributes: ``name``,
    ``manifest`` (None for a 0.2 file), ``legacy``, ``members`` (name -> size).

    Example:
        >>> import os, tempfile
        >>> from torch_liberator.deployer._format import DeployFile, write_deploy_zip
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = write_deploy_zip(os.path.join(tmp.name, 'df.zip'), {'x.txt': b'hi'}, {}, {})
        >>> try:
        ...     DeployFile(fpath)
        ... except ValueError as err:
        ...     print(str(err).split(' has ')[1][:50])
        a malformed manifest: 'model' must name the 'code'
        >>> tmp.cleanup()
    """

    def __init__(self, fpath):
        path, inner = Path(fpath), None
        if not path.exists():
            split = split_zip_path(path)
            if split is None:
                raise CheckpointNotFoundError(
                    f'deploy file {os.fspath(fpath)!r} does not exist (nor is it a path '
                    'inside an existing zip); check the path')
            path, inner = split
        self.fpath, self._verified, self._state = path, {}, None
        self._zip = self._file = None
        try:
            self._members = (self._list_folder(path) if path.is_dir()
                             else self._list_zip(path, inner))
            self.members = {rel: size for rel, (size, _) in self._members.items()}
            self.legacy = MANIFEST_FNAME not in self.members
            if self.legacy and LEGACY_WEIGHTS_FNAME not in self.members:
                raise self._fail(
                    f'is not a deploy file: it has neither {MANIFEST_FNAME} nor '
                    f'{LEGACY_WEIGHTS_FNAME} (members: {sorted(self.members)[:8]})',
                    CheckpointFormatError)
            self.manifest = None if self.legacy else self._read_manifest()
        except BaseException:
            self.close()
            raise

    def _fail(self, what, kind=IntegrityError):
        return kind(f'{os.fspath(self.fpath)!r} {what}')

    def _list_zip(self, path, inner):
        self._file = open_regular(path)
        try:
            self._zip = zipfile.ZipFile(self._file)
            infos = [i for i in self._zip.infolist() if not (i.is_dir() and not i.file_size)]
        except _ZIP_ERRORS as err:
            raise self._fail(f'is not a readable zip file ({type(err).__name__}: {err}); '
                             'is it a deploy file?', CheckpointFormatError) from err
        roots = sorted({i.filename.split('/', 1)[0] for i in infos if '/' in i.filename})
        top = sum('/' not in i.filename for i in infos)
        if len(roots) != 1 or top:
            raise self._fail(
                f'holds {len(roots)} top folders {roots[:4]} (and {top} files at the top); '
                'a deploy zip holds exactly one folder. Is it a deploy file?',
                CheckpointFormatError)
        self.name = roots[0]
        if inner is not None and inner.strip('/').split('/')[0] != self.name:
            raise CheckpointNotFoundError(f'{inner!r} is not inside the deploy folder '
                                          f'{self.name!r} of {os.fspath(path)!r}')
        archive = os.fstat(self._file.fileno()).st_size
        members = {}
        for info in infos:
            rel = info.filename[len(self.name) + 1:]
            if '\\' in rel or '\0' in rel or any(
                    p in ('', '.', '..') for p in info.filename.split('/')):
                raise self._fail(f'holds a member named {info.filename!r}; deploy files '
                                 'hold plain relative names only')
            if rel in members:
                raise self._fail(f'holds the member {rel!r} twice; it was modified after '
                                 'it was written')
            if info.flag_bits & 1 or info.compress_type not in (
                    zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self._fail(f'member {rel!r} is encrypted or uses compression method '
                                 f'{info.compress_type}; deploy files do not')
            stored = info.compress_type == zipfile.ZIP_STORED
            if (info.header_offset + info.compress_size > archive
                    or (stored and info.file_size != info.compress_size)
                    or info.file_size > _MAX_INFLATE_RATIO * info.compress_size + 2 ** 16):
                raise self._fail(f'member {rel!r} declares {info.file_size} bytes in '
                                 f'{info.compress_size} stored bytes: the file is corrupt '
                                 '(or a zip bomb)')
            members[rel] = (info.file_size, info)
        return members

    def _list_folder(self, path):
        markers = (MANIFEST_FNAME, LEGACY_WEIGHTS_FNAME)
        if not any((path / m).is_file() for m in markers):
            subs = [p for p in sorted(path.iterdir())
                    if p.is_dir() and any((p / m).is_file() for m in markers)]
            if len(subs) != 1:
                raise self._fail(f'is not a deploy directory: no {MANIFEST_FNAME} (or '
                                 f'{LEGACY_WEIGHTS_FNAME}) in it or in one sub-folder',
                                 CheckpointFormatError)
            path = subs[0]
        self.name = path.name
        members = {}
        for sub in sorted(path.rglob('*')):
            if sub.is_dir() and not sub.is_symlink():
                continue
            rel = sub.relative_to(path).as_posix()
            if sub.is_symlink() or not sub.is_file():
                raise self._fail(f'holds {rel!r}, which is not a regular file; deploy '
                                 'folders hold files only')
            members[rel] = (sub.stat().st_size, sub)
        return members

    def _read_manifest(self):
        manifest = _load_json(self._read_raw(MANIFEST_FNAME),
                              f'the manifest of {os.fspath(self.fpath)!r}')
        if not isinstance(manifest, dict) or manifest.get('format') != FORMAT_NAME:
            raise self._fail(f'has a {MANIFEST_FNAME} that is not a {FORMAT_NAME} manifest',
                             CheckpointFormatError)
        version = manifest.get('format_version')
        if type(version) is not int or version != FORMAT_VERSION:
            raise self._fail(
                f'uses deploy format version {version!r}; this torch_liberator reads '
                f'version {FORMAT_VERSION} (and 0.2 files): install the torch_liberator '
                'that wrote it, or re-deploy the model', CheckpointFormatError)
        problem = _manifest_problem(manifest)
        if problem:
            raise self._fail(f'has a malformed manifest: {problem}; re-deploy or get the '
                             'file again')
        return manifest

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Release the open file."""
        for handle in (self._zip, self._file):
            if handle is not None:
                handle.close()

    @property
    def weights_member(self) -> str:
        """str: the name of the weights member."""
        return LEGACY_WEIGHTS_FNAME if self.legacy else self.manifest['weights']['file']

    @property
    def code_member(self) -> str:
        """str: the name of the model code member."""
        if not self.legacy:
            return self.manifest['model']['code']
        pys = sorted(m for m in self.members if m.endswith('.py') and '/' not in m)
        if len(pys) != 1:
            raise self._fail(f'(a 0.2 deploy file) holds {len(pys)} .py files {pys[:4]}; '
                             'expected exactly one', CheckpointFormatError)
        return pys[0]

    def _read_raw(self, rel):
        # a member's bytes through the one handle, bounded by its declared size
        if rel not in self._members:
            raise self._fail(f'has no member {rel!r} (members: {sorted(self.members)[:8]})',
                             CheckpointFormatError)
        size, source = self._members[rel]
        if size > MAX_TEXT_BYTES and (rel == MANIFEST_FNAME or rel != self.weights_member):
            raise self._fail(f'member {rel!r} is {size} bytes, more than the '
                             f'{MAX_TEXT_BYTES} this reader accepts for it')
        try:
            with (self._zip.open(source) if self._zip else open_regular(source)) as file:
                data = file.read(size + 1)  # zipfile stops at the declared size
        except (CheckpointFormatError, *_ZIP_ERRORS) as err:
            raise self._fail(f'cannot read member {rel!r} ({type(err).__name__}: {err}); '
                             'the file is corrupt') from err
        if len(data) != size:
            raise self._fail(f'member {rel!r} changed size while it was read')
        return data

    def verify(self):
        """
        Check that the members are exactly those the manifest lists, with
        their sizes and sha256, keeping what was read for :meth:`read` and
        :meth:`read_state_dict`; nothing runs. A 0.2 file cannot be verified:
        this warns.
        """
        if self.legacy:
            warnings.warn(
                f'{os.fspath(self.fpath)!r} was written by torch_liberator 0.2 and has no '
                'manifest: its contents cannot be verified; re-deploy it with this version',
                UserWarning, stacklevel=2)
            return
        listed = self.manifest['members']
        found = set(self.members) - {MANIFEST_FNAME}
        extra, missing = sorted(found - set(listed)), sorted(set(listed) - found)
        if extra or missing:
            raise self._fail(
                f'does not match its manifest: unlisted members {extra[:8]}, missing '
                f'members {missing[:8]}; it was modified after it was written. Nothing in '
                'it was executed.')
        for rel in sorted(listed):
            if rel == self.weights_member:
                self._state = self._read_checked(rel, decode=True)
            else:
                self._verified[rel] = self._read_checked(rel)

    def _read_checked(self, rel, decode=False):
        # a member's bytes (decoded weights if decode) once its size and sha256
        # match the manifest; a worker hashes while the weights decode
        entry = self.manifest['members'].get(rel)
        if entry is None:
            raise self._fail(f'member {rel!r} is not in its manifest; the file was '
                             'modified after it was written')
        if self.members.get(rel, entry['size']) != entry['size']:
            raise self._fail(
                f'member {rel!r} is {self.members[rel]} bytes but the manifest records '
                f'{entry["size"]}; the file was modified or truncated. Nothing in it was '
                'executed.')
        data = value = self._read_raw(rel)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            digest = pool.submit(_sha256, data)
            if decode:
                try:
                    value = self._decode(data)
                except CheckpointFormatError as err:
                    value = err
            digest = digest.result()
        if digest != entry['sha256']:
            raise self._fail(
                f'member {rel!r} has sha256 {digest[:16]}... but the manifest records '
                f'{entry["sha256"][:16]}...; the file was modified after it was written. '
                'Nothing in it was executed.')
        if isinstance(value, CheckpointFormatError):
            raise value
        return value

    def _decode(self, data):
        # safetensors' own loader, then the aliases and the per-module versions
        from collections import OrderedDict

        from safetensors.torch import load
        weights = self.manifest['weights']
        try:
            state = load(data)
        except Exception as err:  # safetensors raises several types
            raise CheckpointFormatError(
                f'the weights are not valid safetensors data ({type(err).__name__}: '
                f'{err}); the deploy file is corrupt, re-deploy the model') from err
        for key, target in sorted((weights.get('aliases') or {}).items()):
            if target not in state or key in state:
                raise CheckpointFormatError(
                    f'weights alias {key!r} -> {target!r} does not name one stored '
                    'tensor; the deploy file is corrupt, re-deploy the model')
            state[key] = state[target]
        state = OrderedDict(sorted(state.items()))
        if weights.get('module_versions'):
            state._metadata = weights['module_versions']
        return state

    def file_sha256(self):
        """The hex sha256 of the whole zip read through the open handle (None for a folder)."""
        if self._file is None:
            return None
        self._file.seek(0)
        return _sha256(self._file)

    def read_json(self, rel):
        """A member parsed as JSON, size and sha256 checked."""
        return _load_json(self.read(rel), f'{rel} of {os.fspath(self.fpath)!r}')

    def read(self, rel) -> bytes:
        """A member's bytes, size and sha256 checked (a 0.2 file: as read)."""
        if rel in self._verified:
            return self._verified[rel]
        if self.legacy or rel == MANIFEST_FNAME:
            return self._read_raw(rel)
        return self._read_checked(rel)

    def read_state_dict(self, device=None):
        """The weights, hash-checked; for a 0.2 file what its snapshot held, read
        with ``torch.load(weights_only=True)``."""
        import pickle

        import torch
        if self.legacy:
            data = io.BytesIO(self._read_raw(LEGACY_WEIGHTS_FNAME))
            try:
                return torch.load(data, map_location=device, weights_only=True)
            except pickle.UnpicklingError as err:
                raise UnsafeCheckpointError(
                    f'the weights in {os.fspath(self.fpath)!r} can only be read by unpickling '
                    'arbitrary objects, which can run code; if you trust the file, extract it '
                    f'and load it with torch.load(weights_only=False) yourself ({err})') from err
            except Exception as err:  # torch.load raises many types on a corrupt file
                raise CheckpointFormatError(
                    f'cannot read the weights in {os.fspath(self.fpath)!r} '
                    f'({type(err).__name__}: {str(err)[:200]}); the file is corrupt') from err
        state, self._state = self._state, None
        if state is None:
            state = self._read_checked(self.weights_member, decode=True)
        if device is not None:
            moved = {id(v): v.to(device) for v in state.values()}  # aliases stay shared
            for key, value in state.items():
                state[key] = moved[id(value)]
        return state


def read_deploy_state_dict(fpath, device=None):
    """
    The weights of a deploy file (a zip, a path inside one, or a folder),
    every member's sha256 checked first; runs no code. For a 0.2 file (a
    warning: it cannot be checked) what its snapshot held.

    Example:
        >>> import os, tempfile, torch
        >>> from torch_liberator.deployer import deploy, read_deploy_state_dict
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = deploy(torch.nn.Linear(3, 2), os.path.join(tmp.name, 'sd.zip'), verbose=0)
        >>> read_deploy_state_dict(fpath)['weight'].shape
        torch.Size([2, 3])
        >>> read_deploy_state_dict(os.path.join(fpath, 'sd', 'weights.safetensors'))['bias'].shape
        torch.Size([2])
        >>> tmp.cleanup()
    """
    with DeployFile(fpath) as dfile:
        dfile.verify()
        return dfile.read_state_dict(device=device)
