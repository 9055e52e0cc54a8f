"""
The on-disk format of a deploy file, read and written without running code.

A deploy file is a zip holding one top-level folder ``<name>/`` with:

* ``manifest.json`` -- format name and version, the sha256 and size of every
  other member, the Python / torch / torch_liberator versions, the model's
  init keyword arguments (as JSON) and the third-party imports its code still
  needs;
* ``<Class>_<hash>.py`` -- the model code (see :mod:`torch_liberator.deployer._export`);
* ``weights.safetensors`` -- the state dict, in a format that cannot carry code;
* ``train_info.json`` (optional) -- whatever the caller attached.

The same folder unzipped (a "deploy directory") is read the same way. Files
written by torch_liberator 0.2 (``<name>/deploy_snapshot.pt`` next to
``<name>/<Class>_<hash>.py``, no manifest) are still read, with a warning that
they cannot be verified; their weights are read with
``torch.load(weights_only=True)``.

Nothing here imports or executes the model code: this module only moves bytes,
checks hashes and decodes tensors. :mod:`torch_liberator.deployer` decides
when code may run.

Example:
    >>> import torch, ubelt as ub
    >>> from torch_liberator.deployer._format import write_deploy_zip, read_deploy_state_dict, read_manifest
    >>> from torch_liberator.deployer._weights import WeightsPayload
    >>> dpath = ub.Path.appdir('torch_liberator/tests/deployfile').ensuredir()
    >>> weights = WeightsPayload({'w': torch.ones(2)})
    >>> fpath = write_deploy_zip(dpath / 'demo.zip', {'weights.safetensors': weights}, {})
    >>> read_deploy_state_dict(fpath)['w'].tolist()
    [1.0, 1.0]
    >>> sorted(read_manifest(fpath)['members'])
    ['weights.safetensors']
"""
import hashlib
import json
import os
import warnings

from torch_liberator.errors import (
    CheckpointFormatError, CheckpointNotFoundError, DeployError,
    IntegrityError)
from torch_liberator.deployer._source import open_source
from torch_liberator.deployer._digest import Digester
from torch_liberator.deployer._writer import (  # NOQA: F401 (re-exported)
    FORMAT_NAME, FORMAT_VERSION, LEGACY_WEIGHTS_FNAME, MANIFEST_FNAME,
    TRAIN_INFO_FNAME, WEIGHTS_FNAME, sha256_bytes, write_deploy_zip)
from torch_liberator.deployer._weights import decode_weights, read_legacy_weights, read_weights

__all__ = [
    'FORMAT_NAME',
    'FORMAT_VERSION',
    'LEGACY_WEIGHTS_FNAME',
    'MANIFEST_FNAME',
    'TRAIN_INFO_FNAME',
    'WEIGHTS_FNAME',
    'DeployFile',
    'read_deploy_state_dict',
    'read_manifest',
    'sha256_bytes',
    'write_deploy_zip',
]


_MANIFEST_MAX_BYTES = 16 * 2 ** 20


class DeployFile:
    """
    A deploy zip or directory opened for reading; never executes its code.

    Args:
        fpath (str | PathLike): a deploy ``.zip``, a path inside one
            (``x.zip/name/weights.safetensors``), or an unzipped deploy
            directory (the ``<name>`` folder or the folder holding it).

    Attributes:
        manifest (dict | None): the parsed manifest (None for a 0.2 file).
        legacy (bool): True for a torch_liberator 0.2 file (no manifest).
        members (Dict[str, int]): relative member name -> size in bytes.

    Example:
        >>> import torch, ubelt as ub
        >>> from torch_liberator.deployer._format import DeployFile, write_deploy_zip
        >>> from torch_liberator.deployer._weights import WeightsPayload
        >>> dpath = ub.Path.appdir('torch_liberator/tests/deployfile').ensuredir()
        >>> fpath = write_deploy_zip(dpath / 'df.zip', {'weights.safetensors': WeightsPayload({'w': torch.ones(1)})}, {})
        >>> with DeployFile(fpath) as dfile:
        ...     dfile.verify()
        ...     print(dfile.name, dfile.weights_member, dfile.legacy)
        df weights.safetensors False
    """

    def __init__(self, fpath):
        path, inner, self._source = open_source(fpath)
        self.fpath = path
        if path.is_dir():
            prefix = self._find_root_dir(path)
        else:
            prefix = self._find_root_zip(inner)
        self._prefix = prefix
        self.name = prefix.rstrip('/').rsplit('/', 1)[-1] if prefix else path.stem
        self.members = {
            name[len(prefix):]: self._source.size(name)
            for name in self._source.names() if name.startswith(prefix)}
        self._verified = {}
        self._verified_state = None
        self.manifest = None
        self.legacy = MANIFEST_FNAME not in self.members
        if not self.legacy:
            self.manifest = self._read_manifest()
        elif LEGACY_WEIGHTS_FNAME not in self.members:
            self.close()
            raise CheckpointFormatError(
                f'{os.fspath(path)!r} is not a deploy file: it has neither '
                f'{MANIFEST_FNAME} nor {LEGACY_WEIGHTS_FNAME} (members: '
                f'{sorted(self.members)[:8]})')

    def _find_root_zip(self, inner):
        names = self._source.names()
        if inner is not None:
            # a path inside the zip names its deploy folder
            parts = inner.strip('/').split('/')
            for idx in range(len(parts), -1, -1):
                prefix = '/'.join(parts[:idx])
                prefix = prefix + '/' if prefix else ''
                if any(n == prefix + MANIFEST_FNAME or n == prefix + LEGACY_WEIGHTS_FNAME
                       for n in names):
                    return prefix
            raise CheckpointNotFoundError(
                f'{inner!r} is not a deploy folder inside {os.fspath(self.fpath)!r}')
        roots = sorted({n.rsplit('/', 1)[0] + '/' if '/' in n else ''
                        for n in names
                        if n.endswith('/' + MANIFEST_FNAME) or n == MANIFEST_FNAME
                        or n.endswith(LEGACY_WEIGHTS_FNAME)})
        roots = [r for r in roots if r.count('/') <= 1]
        if len(roots) != 1:
            self._source.close()
            raise CheckpointFormatError(
                f'{os.fspath(self.fpath)!r} holds {len(roots)} deploy folders '
                f'({roots}); expected exactly one. Is it a deploy file?')
        return roots[0]

    def _find_root_dir(self, path):
        names = self._source.names()
        for marker in (MANIFEST_FNAME, LEGACY_WEIGHTS_FNAME):
            if marker in names:
                return ''
            roots = [n[:-len(marker)] for n in names
                     if n.endswith('/' + marker) and n.count('/') == 1]
            if len(roots) == 1:
                return roots[0]
        raise CheckpointFormatError(
            f'directory {os.fspath(path)!r} is not a deploy directory: no '
            f'{MANIFEST_FNAME} (or {LEGACY_WEIGHTS_FNAME}) in it or in one '
            'sub-folder')

    def _read_manifest(self):
        size = self.members[MANIFEST_FNAME]
        if size > _MANIFEST_MAX_BYTES:
            raise IntegrityError(
                f'the manifest of {os.fspath(self.fpath)!r} is {size} bytes '
                f'(more than {_MANIFEST_MAX_BYTES}); it is not a manifest this '
                'library wrote')
        raw = self._source.read(self._prefix + MANIFEST_FNAME)
        try:
            manifest = json.loads(raw)
        except ValueError as err:
            raise IntegrityError(
                f'the manifest of {os.fspath(self.fpath)!r} is not valid JSON '
                f'({err}); the deploy file is corrupt') from err
        if not isinstance(manifest, dict) or manifest.get('format') != FORMAT_NAME:
            raise DeployError(
                f'{os.fspath(self.fpath)!r} has a manifest.json that is not a '
                f'{FORMAT_NAME} manifest')
        version = manifest.get('format_version')
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise DeployError(
                f'{os.fspath(self.fpath)!r} uses deploy format version '
                f'{version!r}; this torch_liberator reads versions <= '
                f'{FORMAT_VERSION}, upgrade torch_liberator')
        if not isinstance(manifest.get('members'), dict):
            raise IntegrityError(
                f'the manifest of {os.fspath(self.fpath)!r} lists no members')
        return manifest

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """
        Release the open zip file.

        Example:
            >>> import torch, ubelt as ub
            >>> from torch_liberator.deployer._format import DeployFile, write_deploy_zip
            >>> from torch_liberator.deployer._weights import WeightsPayload
            >>> dpath = ub.Path.appdir('torch_liberator/tests/deployfile').ensuredir()
            >>> fpath = write_deploy_zip(dpath / 'ex.zip', {'weights.safetensors': WeightsPayload({'w': torch.ones(2)}), 'info.txt': b'hi'}, {'model': {'code': None}})
            >>> dfile = DeployFile(fpath)
            >>> dfile.close()
        """
        self._source.close()

    @property
    def weights_member(self):
        """
        str: relative name of the weights member.

        Example:
            >>> import torch, ubelt as ub
            >>> from torch_liberator.deployer._format import DeployFile, write_deploy_zip
            >>> from torch_liberator.deployer._weights import WeightsPayload
            >>> dpath = ub.Path.appdir('torch_liberator/tests/deployfile').ensuredir()
            >>> fpath = write_deploy_zip(dpath / 'ex.zip', {'weights.safetensors': WeightsPayload({'w': torch.ones(2)}), 'info.txt': b'hi'}, {'model': {'code': None}})
            >>> with DeployFile(fpath) as dfile:
            ...     print(dfile.weights_member)
            weights.safetensors
        """
        if self.legacy:
            return LEGACY_WEIGHTS_FNAME
        return self.manifest.get('weights', {}).get('file', WEIGHTS_FNAME)

    @property
    def code_member(self):
        """
        str | None: relative name of the model code member.

        Example:
            >>> import torch, ubelt as ub
            >>> from torch_liberator.deployer._format import DeployFile, write_deploy_zip
            >>> from torch_liberator.deployer._weights import WeightsPayload
            >>> dpath = ub.Path.appdir('torch_liberator/tests/deployfile').ensuredir()
            >>> fpath = write_deploy_zip(dpath / 'ex.zip', {'weights.safetensors': WeightsPayload({'w': torch.ones(2)}), 'info.txt': b'hi'}, {'model': {'code': None}})
            >>> with DeployFile(fpath) as dfile:
            ...     print(dfile.code_member)
            None
        """
        if not self.legacy:
            return self.manifest.get('model', {}).get('code')
        pys = sorted(m for m in self.members if m.endswith('.py') and '/' not in m)
        if len(pys) != 1:
            raise CheckpointFormatError(
                f'{os.fspath(self.fpath)!r} (a 0.2 deploy file) holds '
                f'{len(pys)} .py files ({pys}); expected exactly one')
        return pys[0]

    def verify(self):
        """
        Check the sha256 and size of every member against the manifest.

        The checked bytes are kept so later reads do not touch the file
        again. Members the manifest does not list, and listed members that
        are missing, are errors. A 0.2 file cannot be verified: this warns
        and returns.

        Raises:
            IntegrityError: on the first mismatch.

        Example:
            >>> import torch, ubelt as ub
            >>> from torch_liberator.deployer._format import DeployFile, write_deploy_zip
            >>> from torch_liberator.deployer._weights import WeightsPayload
            >>> dpath = ub.Path.appdir('torch_liberator/tests/deployfile').ensuredir()
            >>> fpath = write_deploy_zip(dpath / 'ex.zip', {'weights.safetensors': WeightsPayload({'w': torch.ones(2)}), 'info.txt': b'hi'}, {'model': {'code': None}})
            >>> with DeployFile(fpath) as dfile:
            ...     dfile.verify()  # raises IntegrityError on a mismatch
            ...     print(sorted(dfile.members))
            ['info.txt', 'manifest.json', 'weights.safetensors']
        """
        if self.legacy:
            warnings.warn(
                f'{os.fspath(self.fpath)!r} was written by torch_liberator 0.2 '
                'and has no manifest: its contents cannot be verified; '
                're-deploy it with this version', UserWarning, stacklevel=2)
            return
        expected = self.manifest['members']
        found = set(self.members) - {MANIFEST_FNAME}
        extra = sorted(found - set(expected))
        missing = sorted(set(expected) - found)
        if extra or missing:
            raise IntegrityError(
                f'deploy file {os.fspath(self.fpath)!r} does not match its '
                f'manifest: unlisted members {extra}, missing members '
                f'{missing}; it was modified after it was written. Nothing '
                'in it was executed.')
        for rel in sorted(expected):
            if rel == self.weights_member:
                self._verified_state = self._read_weights_checked(rel, expected[rel])
            else:
                self._verified[rel] = self._read_checked(rel, expected[rel])

    def _read_checked(self, rel, entry):
        self._check_size(rel, entry)
        data, digest = self._source.read_hashed(self._prefix + rel)
        self._check_digest(rel, entry, digest)
        return data

    def _read_weights_checked(self, rel, entry):
        """
        Decode the weights while hashing them: each tensor is read straight
        into its own storage while a worker thread hashes what was read.
        The tensors are returned only if the sha256 matches.
        """
        self._check_size(rel, entry)
        file = self._source.open_stored(self._prefix + rel)
        if file is None:  # a compressed member (not written by deploy)
            return decode_weights(self._read_checked(rel, entry))
        hasher = hashlib.sha256()
        worker = Digester(hasher.update)
        malformed = None
        try:
            with file:
                state = read_weights(file, entry['size'], worker.feed)
        except CheckpointFormatError as err:
            malformed = err
        except OSError as err:
            raise IntegrityError(
                f'cannot read member {rel!r} of {os.fspath(self.fpath)!r} '
                f'({err}); the file is corrupt') from err
        finally:
            worker.finish()
        if malformed is not None:
            self._read_checked(rel, entry)  # changed bytes: IntegrityError
            raise malformed  # the bytes are as written: a malformed file
        self._check_digest(rel, entry, hasher.hexdigest())
        return state

    def _check_size(self, rel, entry):
        if self.members[rel] != entry.get('size'):
            raise IntegrityError(
                f'member {rel!r} of {os.fspath(self.fpath)!r} is '
                f'{self.members[rel]} bytes but the manifest records '
                f'{entry.get("size")}; the file was modified or truncated. '
                'Nothing in it was executed.')

    def _check_digest(self, rel, entry, digest):
        if digest != entry.get('sha256'):
            raise IntegrityError(
                f'member {rel!r} of {os.fspath(self.fpath)!r} has sha256 '
                f'{digest[:16]}... but the manifest records '
                f'{str(entry.get("sha256"))[:16]}...; the file was modified '
                'after it was written. Nothing in it was executed.')

    def read_member(self, rel, verify=True):
        """
        Read one member's bytes, checked against the manifest.

        Args:
            rel (str): relative member name (e.g. ``weights.safetensors``).
            verify (bool): check its hash (ignored for 0.2 files).

        Returns:
            bytes

        Example:
            >>> import torch, ubelt as ub
            >>> from torch_liberator.deployer._format import DeployFile, write_deploy_zip
            >>> from torch_liberator.deployer._weights import WeightsPayload
            >>> dpath = ub.Path.appdir('torch_liberator/tests/deployfile').ensuredir()
            >>> fpath = write_deploy_zip(dpath / 'ex.zip', {'weights.safetensors': WeightsPayload({'w': torch.ones(2)}), 'info.txt': b'hi'}, {'model': {'code': None}})
            >>> with DeployFile(fpath) as dfile:
            ...     print(bytes(dfile.read_member('info.txt')))
            b'hi'
        """
        if rel in self._verified:
            return self._verified.pop(rel)
        if rel not in self.members:
            raise CheckpointFormatError(
                f'deploy file {os.fspath(self.fpath)!r} has no member {rel!r} '
                f'(members: {sorted(self.members)})')
        if verify and not self.legacy and rel != MANIFEST_FNAME:
            entry = self.manifest['members'].get(rel)
            if entry is None:
                raise IntegrityError(
                    f'member {rel!r} of {os.fspath(self.fpath)!r} is not in '
                    'its manifest; the file was modified after it was written')
            return self._read_checked(rel, entry)
        return self._source.read(self._prefix + rel)

    def read_state_dict(self, device=None):
        """
        Decode the weights member (safetensors, or weights_only torch.load for
        a 0.2 file).

        Args:
            device (str | torch.device | None): where to put the tensors.

        Returns:
            Dict[str, Tensor]

        Example:
            >>> import torch, ubelt as ub
            >>> from torch_liberator.deployer._format import DeployFile, write_deploy_zip
            >>> from torch_liberator.deployer._weights import WeightsPayload
            >>> dpath = ub.Path.appdir('torch_liberator/tests/deployfile').ensuredir()
            >>> fpath = write_deploy_zip(dpath / 'ex.zip', {'weights.safetensors': WeightsPayload({'w': torch.ones(2)}), 'info.txt': b'hi'}, {'model': {'code': None}})
            >>> with DeployFile(fpath) as dfile:
            ...     print(dfile.read_state_dict()['w'].tolist())
            [1.0, 1.0]
        """
        if self.legacy:
            data = self.read_member(self.weights_member)
            return read_legacy_weights(data, self.fpath, device)
        state, self._verified_state = self._verified_state, None
        if state is None:
            rel = self.weights_member
            if rel not in self.members:
                raise CheckpointFormatError(
                    f'deploy file {os.fspath(self.fpath)!r} has no weights '
                    f'member {rel!r} (members: {sorted(self.members)})')
            entry = self.manifest['members'].get(rel)
            if entry is None:
                raise IntegrityError(
                    f'member {rel!r} of {os.fspath(self.fpath)!r} is not in '
                    'its manifest; the file was modified after it was written')
            state = self._read_weights_checked(rel, entry)
        if device is not None:
            state = _to_device(state, device)
        return state


def read_manifest(fpath):
    """
    Read the manifest of a deploy file without checking hashes or running
    code.

    Args:
        fpath (str | PathLike): a deploy zip, a path inside one, or a deploy
            directory.

    Returns:
        dict: the manifest; for a 0.2 file a stand-in with ``format_version``
        0 and the member sizes.

    Example:
        >>> import ubelt as ub
        >>> from torch_liberator.deployer._format import write_deploy_zip, read_manifest
        >>> dpath = ub.Path.appdir('torch_liberator/tests/deployfile').ensuredir()
        >>> fpath = write_deploy_zip(dpath / 'm.zip', {'x.txt': b'hi'}, {'initkw': {}})
        >>> read_manifest(fpath)['members']['x.txt']['size']
        2
    """
    with DeployFile(fpath) as dfile:
        if dfile.manifest is not None:
            return dfile.manifest
        return {
            'format': 'torch_liberator 0.2 (no manifest)',
            'format_version': 0,
            'name': dfile.name,
            'members': {k: {'sha256': None, 'size': v}
                        for k, v in dfile.members.items()},
        }


def read_deploy_state_dict(fpath, device=None):
    """
    Read the weights of a deploy file as a state dict; never executes code.

    When the file has a manifest every member's sha256 is checked first.

    Args:
        fpath (str | PathLike): a deploy ``.zip``, a path inside one
            (``x.zip/name/deploy_snapshot.pt``), or an unzipped deploy
            directory.
        device (str | torch.device | None): where to put the tensors
            (default: CPU).

    Returns:
        Dict[str, Tensor]

    Raises:
        CheckpointNotFoundError: the path does not exist.
        CheckpointFormatError: not a deploy file, or unreadable weights.
        IntegrityError: a member does not match the manifest.

    Example:
        >>> import torch, ubelt as ub
        >>> from torch_liberator.deployer._format import write_deploy_zip, read_deploy_state_dict
        >>> from torch_liberator.deployer._weights import WeightsPayload
        >>> dpath = ub.Path.appdir('torch_liberator/tests/deployfile').ensuredir()
        >>> data = WeightsPayload({'w': torch.zeros(2, 3)})
        >>> fpath = write_deploy_zip(dpath / 'sd.zip', {'weights.safetensors': data}, {})
        >>> read_deploy_state_dict(fpath)['w'].shape
        torch.Size([2, 3])
        >>> read_deploy_state_dict(fpath / 'sd' / 'weights.safetensors')['w'].shape
        torch.Size([2, 3])
    """
    with DeployFile(fpath) as dfile:
        dfile.verify()
        return dfile.read_state_dict(device=device)


def _to_device(state, device):
    """Move a state dict's tensors; keys that share a tensor still do."""
    moved = {}
    out = type(state)()
    for key, value in state.items():
        if id(value) not in moved:
            moved[id(value)] = value.to(device)
        out[key] = moved[id(value)]
    if hasattr(state, '_metadata'):
        out._metadata = state._metadata
    return out
