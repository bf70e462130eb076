"""pytest's collection of the doctests in dict_minimize/ (pyproject: ``--doctest-modules``): the
modules built on one framework are left out where that framework is not installed, as the
tests of that framework skip themselves (tools/check_versions.sh runs without PyTorch). Every
test and doctest also gets JAX's global float64 flag back as it found it."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator

import pytest

#: the modules that import a framework when they are imported
NEEDS = {
    "torch": [
        "dict_minimize/torch_api.py",
        "dict_minimize/_models/torch.py",
        "dict_minimize/backends/torch.py",
        "dict_minimize/backends/torch_ad.py",
        "dict_minimize/backends/torch_batch.py",
        "dict_minimize/backends/torch_sparse_ad.py",
    ],
    "tensorflow": [
        "dict_minimize/tensorflow_api.py",
        "dict_minimize/_models/keras.py",
        "dict_minimize/backends/tensorflow.py",
        "dict_minimize/backends/tensorflow_ad.py",
        "dict_minimize/backends/tensorflow_batch.py",
        "dict_minimize/backends/tensorflow_sparse_ad.py",
    ],
    "jax": [
        "dict_minimize/jax_api.py",
        "dict_minimize/backends/jax.py",
        "dict_minimize/backends/jax_ad.py",
        "dict_minimize/backends/jax_sparse_ad.py",
        "dict_minimize/backends/jax_trace.py",
        "dict_minimize/backends/jax_batch.py",
    ],
}

#: modules that import without the framework, but whose docstring examples use it
EXAMPLES_NEED = {
    "torch": ["dict_minimize/_solvers/implicit.py"],
    "tensorboard": ["dict_minimize/tensorboard.py"],
    "nlopt": ["dict_minimize/_solvers/nlopt.py"],
}

collect_ignore = [
    path
    for table in (NEEDS, EXAMPLES_NEED)
    for name, paths in table.items()
    if importlib.util.find_spec(name) is None
    for path in paths
]


def _x64(jax: object) -> bool:
    return bool(getattr(getattr(jax, "config", None), "jax_enable_x64", False))


@pytest.fixture(autouse=True)
def _jax_float64_put_back() -> Iterator[None]:
    """JAX's global float64 flag as it was before each test (and doctest): a test or a
    benchmark it runs that turns it on must not change the dtypes the ones after it see."""
    jax = sys.modules.get("jax")
    if jax is not None:
        before = _x64(jax)
    else:  # JAX's own default: off unless the environment says otherwise
        before = os.environ.get("JAX_ENABLE_X64", "").lower() in ("1", "true", "yes", "on")
    yield
    jax = sys.modules.get("jax")
    if jax is not None and _x64(jax) != before:
        jax.config.update("jax_enable_x64", before)  # type: ignore[attr-defined]
