"""Backends: one small module per framework, loaded only when its tensors show up.

Recognising a tensor never imports a framework: a framework that was never imported cannot own
the user's tensors, so we only look at frameworks already in ``sys.modules``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from dict_minimize._errors import (
    TENSOR_NAMES,
    Attr,
    Path,
    at,
    missing_framework,
    type_name,
)
from dict_minimize._structure.layout import DEVICE_PICKLING
from dict_minimize._structure.types import Backend

#: backend name -> the top-level module of its framework
FRAMEWORK_MODULES = {"numpy": "numpy", "torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}
NAMES = tuple(FRAMEWORK_MODULES)

_loaded: dict[str, Backend] = {}


def get_backend(name: str) -> Backend:
    """The backend record for ``name`` ('numpy', 'torch', 'jax' or 'tensorflow').

    Raises ImportError naming the pip extra when the framework is not installed.

    Example:
        >>> get_backend("numpy").name
        'numpy'
    """
    if name not in FRAMEWORK_MODULES:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(NAMES)}")
    backend = _loaded.get(name)
    if backend is None:
        try:
            importlib.import_module(FRAMEWORK_MODULES[name])
        except ImportError as exc:
            raise missing_framework(name) from exc
        module = importlib.import_module(f"dict_minimize.backends.{name}")
        backend = _loaded.setdefault(name, module.BACKEND)
    return backend


def _owner(value: Any) -> str | None:
    """Name of the backend whose framework made ``value``, looking only at imported frameworks."""
    for name in ("torch", "jax", "tensorflow"):
        module = FRAMEWORK_MODULES[name]
        if sys.modules.get(module) is not None and get_backend(name).owns(value):
            return name
    if get_backend("numpy").owns(value):
        return "numpy"
    return None


def detect(x0: Mapping[Any, Any], where: str = "x0") -> Backend:
    """The backend that owns every entry of ``x0``; a clear error for mixed or unknown kinds."""
    owners: dict[str, Hashable] = {}
    by_type: dict[type, str | None] = {}  # recognising a tensor depends on its type alone
    for key, value in x0.items():
        t = type(value)
        if t in by_type:
            owner = by_type[t]
        else:
            owner = by_type[t] = _owner(value)
        if owner is None:
            raise TypeError(
                f"{at(where, key)} is a {type_name(value)}; expected a NumPy array or a "
                "PyTorch, JAX or TensorFlow tensor (convert ints, and lists meant as one array, "
                f"with np.asarray(..., dtype=float)){_model_hint(key)}"
            )
        owners.setdefault(owner, key)
    if len(owners) > 1:
        parts = ", ".join(f"{at(where, k)} is a {TENSOR_NAMES[o]}" for o, k in owners.items())
        raise TypeError(
            f"{where} mixes frameworks: {parts}. All entries must come from one framework."
        )
    if not owners:
        raise ValueError(f"{where} is empty: there is nothing to optimize")
    return get_backend(next(iter(owners)))


def _model_hint(key: Hashable) -> str:
    """For a leaf reached through a JAX pytree node's attributes: how to leave a model's
    non-array fields out of x0."""
    if isinstance(key, Path) and any(type(part) is Attr for part in key):
        return (
            ". A model's non-array fields (activations, flags) stay out of x0: split them off, "
            "e.g. params, static = eqx.partition(model, eqx.is_inexact_array)"
        )
    return ""


def float_leaf(name: str, value: float) -> Any:
    """A Python float leaf of x0 as a 0-d float64 tensor of backend ``name`` (JAX: its default
    float, float64 only with x64 enabled)."""
    if name == "torch":
        import torch

        return torch.tensor(value, dtype=torch.float64)
    if name == "jax":
        import jax.numpy as jnp

        return jnp.asarray(value)
    if name == "tensorflow":
        import tensorflow as tf

        return tf.constant(value, dtype=tf.float64)
    return np.asarray(value, dtype=np.float64)


__all__ = ["NAMES", "detect", "float_leaf", "get_backend"]


def jax_portable_devices(devices: tuple[Any, ...]) -> tuple[Any, ...]:
    """A JAX layout's devices as they are pickled: shardings (which do not pickle) become
    ``("jax-device", platform, id)`` of their first device.

    Example:
        >>> import jax
        >>> jax_portable_devices((jax.devices("cpu")[0],))
        (('jax-device', 'cpu', 0),)
    """
    out = []
    for d in devices:
        if isinstance(d, tuple):
            out.append(d)
            continue
        device = min(d.device_set, key=lambda v: v.id) if hasattr(d, "device_set") else d
        out.append(("jax-device", str(device.platform), int(device.id)))
    return tuple(out)


def jax_local_devices(devices: tuple[Any, ...]) -> tuple[Any, ...]:
    """The inverse of :func:`jax_portable_devices` in the process that unpickles a layout: an
    entry goes to the device of that platform and id when this process has it, else to the
    default device (an array sharded over several devices comes back on one).
    """
    import jax

    from dict_minimize.backends.jax_trace import single_device_sharding

    out = []
    for d in devices:
        if not (isinstance(d, tuple) and len(d) == 3 and d[0] == "jax-device"):
            out.append(d)
            continue
        _, platform, index = d
        try:
            device = next(v for v in jax.devices(platform) if v.id == index)
        except (RuntimeError, StopIteration):
            device = jax.devices()[0]
        out.append(single_device_sharding(device))
    return tuple(out)


DEVICE_PICKLING["jax"] = (jax_portable_devices, jax_local_devices)
