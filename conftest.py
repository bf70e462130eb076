"""pytest's collection of the doctests in dict_minimize/ (pyproject: ``--doctest-modules``): the
modules built on one framework are left out where that framework is not installed, as the
tests of that framework skip themselves (tools/check_versions.sh runs without PyTorch)."""

from __future__ import annotations

import importlib.util

#: the modules that import a framework when they are imported
NEEDS = {
    "torch": [
        "dict_minimize/torch_api.py",
        "dict_minimize/_models/torch.py",
        "dict_minimize/backends/torch.py",
        "dict_minimize/backends/torch_ad.py",
        "dict_minimize/backends/torch_sparse_ad.py",
    ],
    "tensorflow": [
        "dict_minimize/tensorflow_api.py",
        "dict_minimize/_models/keras.py",
        "dict_minimize/backends/tensorflow.py",
        "dict_minimize/backends/tensorflow_ad.py",
        "dict_minimize/backends/tensorflow_sparse_ad.py",
    ],
    "jax": [
        "dict_minimize/jax_api.py",
        "dict_minimize/backends/jax.py",
        "dict_minimize/backends/jax_ad.py",
        "dict_minimize/backends/jax_sparse_ad.py",
        "dict_minimize/backends/jax_trace.py",
    ],
}

#: modules that import without the framework, but whose docstring examples use it
EXAMPLES_NEED = {"torch": ["dict_minimize/_solvers/implicit.py"]}

collect_ignore = [
    path
    for table in (NEEDS, EXAMPLES_NEED)
    for name, paths in table.items()
    if importlib.util.find_spec(name) is None
    for path in paths
]
