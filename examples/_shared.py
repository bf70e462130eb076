"""Helpers the example scripts share (``examples/`` is not a package: each script imports this
module from its own folder, which Python puts first on ``sys.path``)."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

#: how to install each optional library an example may import (the package's extras where one
#: holds it)
INSTALL = {
    "torch": "pip install 'dict_minimize[torch]'",
    "jax": "pip install 'dict_minimize[jax]'",
    "jaxlib": "pip install 'dict_minimize[jax]'",
    "tensorflow": "pip install 'dict_minimize[tensorflow]'",
    "keras": "pip install 'dict_minimize[tensorflow]'",
    "flax": "pip install 'dict_minimize[flax]'",
    "equinox": "pip install 'dict_minimize[equinox]'",
    "matplotlib": "pip install 'dict_minimize[plot]'",
    "tqdm": "pip install 'dict_minimize[progress]'",
    "dask": "pip install 'dict_minimize[dask]'",
    "distributed": "pip install 'dict_minimize[dask]'",
    "sklearn": "pip install scikit-learn",
    "betacal": "pip install betacal",
}


def available(name: str) -> bool:
    """Whether the optional library ``name`` can be imported (checked without importing it).

    Example:
        >>> available("numpy"), available("no_such_library_here")
        (True, False)
    """
    return importlib.util.find_spec(name) is not None


@contextlib.contextmanager
def requires(script: str) -> Iterator[None]:
    """Imports in the block that find an optional library missing raise an ImportError that
    names the script, the library and the command that installs it (:data:`INSTALL`).

    Args:
        script: the example's ``__file__`` (only its name is shown).

    Example:
        >>> with requires("/somewhere/my_example.py"):
        ...     import numpy
        >>> import sys
        >>> from unittest import mock
        >>> no_equinox = mock.patch.dict(sys.modules, {"equinox": None})  # as if not installed
        >>> with no_equinox, requires("/somewhere/my_example.py"):
        ...     import equinox
        Traceback (most recent call last):
        ...
        ImportError: my_example.py needs equinox, which is not installed: pip install 'dict_minimize[equinox]'

        A missing submodule or dependency of an installed library is not translated: the
        library is there, and its own error says more.
    """  # noqa: E501
    try:
        yield
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        if top not in INSTALL or available(top):
            raise
        name = Path(script).name
        hint = f"{name} needs {top}, which is not installed: {INSTALL[top]}"
        raise ImportError(hint) from None


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with PyTorch's intra-op threads set to ``n``, then restore them.

    On a small, busy machine PyTorch's default threads make tiny operations many times slower
    (an MLP evaluation measured 17.8 ms instead of 0.5 ms on 2 loaded cores).

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
