"""Sphinx configuration for the torch_liberator docs.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` from the
repository root (``-W``: any warning fails the build).
"""
import os
import sys

# document the source tree next to this folder, installed or not
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..')))

import torch_liberator  # NOQA: E402

project = 'torch_liberator'
author = 'torch_liberator developers'
copyright = '2021-2026, torch_liberator developers'
release = torch_liberator.__version__
version = '.'.join(release.split('.')[:2])

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = 'bysource'
autodoc_typehints = 'none'

exclude_patterns = ['_build']
html_theme = 'alabaster'
