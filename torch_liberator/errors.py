"""
The exceptions torch_liberator raises.

Every class derives from :class:`LiberatorError` so a caller (the CLI, for
one) can catch everything this library raises in one place, and also from the
builtin that matches the problem, so ``except ValueError`` or
``except OSError`` keep working for code that does not know this module.

Example:
    >>> from torch_liberator.errors import CheckpointFormatError, LiberatorError
    >>> err = CheckpointFormatError('no tensors in checkpoint')
    >>> assert isinstance(err, LiberatorError) and isinstance(err, ValueError)
"""

__all__ = [
    'CheckpointFormatError',
    'CheckpointNotFoundError',
    'DeployError',
    'ExportError',
    'IntegrityError',
    'KeyRuleError',
    'LiberatorError',
    'PolicyError',
    'ShapeMismatchError',
    'UnsafeCheckpointError',
]


class LiberatorError(Exception):
    """
    Base class of every error raised on purpose by torch_liberator.

    Example:
        >>> from torch_liberator.errors import LiberatorError
        >>> issubclass(LiberatorError, Exception)
        True
    """


class CheckpointNotFoundError(LiberatorError, FileNotFoundError):
    """
    A checkpoint path (or glob) names no file, or names several.

    Example:
        >>> from torch_liberator.errors import CheckpointNotFoundError
        >>> issubclass(CheckpointNotFoundError, FileNotFoundError)
        True
    """


class CheckpointFormatError(LiberatorError, ValueError):
    """
    A checkpoint file is unreadable, corrupt, or holds something that is not
    a state dict of tensors.

    Example:
        >>> from torch_liberator.errors import CheckpointFormatError
        >>> issubclass(CheckpointFormatError, ValueError)
        True
    """


class UnsafeCheckpointError(CheckpointFormatError):
    """
    A checkpoint can only be read by unpickling arbitrary objects, which can
    run code; the caller has to opt in explicitly.

    Example:
        >>> from torch_liberator.errors import UnsafeCheckpointError
        >>> issubclass(UnsafeCheckpointError, ValueError)
        True
    """


class ShapeMismatchError(LiberatorError, ValueError):
    """
    One tensor cannot be fitted into another (for instance their ranks
    differ).

    Example:
        >>> from torch_liberator.errors import ShapeMismatchError
        >>> issubclass(ShapeMismatchError, ValueError)
        True
    """


class PolicyError(LiberatorError, ValueError):
    """
    A ``mangle`` option is malformed: an unknown policy, a pattern that is
    not a string or matches no model key.

    Example:
        >>> from torch_liberator.errors import PolicyError
        >>> issubclass(PolicyError, ValueError)
        True
    """


class ExportError(LiberatorError, ValueError):
    """
    The source code of a model cannot be extracted into a standalone file.

    Example:
        >>> from torch_liberator.errors import ExportError
        >>> issubclass(ExportError, ValueError)
        True
    """


class DeployError(LiberatorError, ValueError):
    """
    A deploy file cannot be written or read.

    Example:
        >>> from torch_liberator.errors import DeployError
        >>> issubclass(DeployError, ValueError)
        True
    """


class IntegrityError(DeployError):
    """
    A deploy file does not match its manifest (it was modified after it was
    written); nothing in it was executed.

    Example:
        >>> from torch_liberator.errors import IntegrityError
        >>> issubclass(IntegrityError, DeployError)
        True
    """


class KeyRuleError(LiberatorError, ValueError):
    """
    A ``rename``, ``include`` or ``exclude`` option is malformed, or a rule
    of it matches no key.

    Example:
        >>> from torch_liberator.errors import KeyRuleError
        >>> issubclass(KeyRuleError, ValueError)
        True
    """
