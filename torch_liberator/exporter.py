"""
The torch_liberator 0.2 import path of :func:`export_model_code`, kept so
``from torch_liberator.exporter import export_model_code`` keeps working; the
code lives in :mod:`torch_liberator.deployer`.

Example:
    >>> from torch_liberator import deployer, exporter
    >>> exporter.export_model_code is deployer.export_model_code
    True
"""
from torch_liberator.deployer import export_model_code

__all__ = ['export_model_code']
