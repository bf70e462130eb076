"""The ``fw`` fixture: shared behaviour written once, run on every installed framework."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

DTYPES = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class Framework:
    """How tests make and read tensors of one framework."""

    name: str
    tensor: Callable[[Any, str], Any]  # (array-like, dtype name) -> tensor
    to_numpy: Callable[[Any], np.ndarray]  # tensor -> float64 ndarray
    dtype_name: Callable[[Any], str]
    type_check: Callable[[Any], bool]
    x64: Callable[[], contextlib.AbstractContextManager]  # float64 available inside

    def __repr__(self) -> str:
        return self.name


def _numpy() -> Framework:
    def tensor(a: Any, dtype: str = "float64") -> Any:
        if dtype == "bfloat16":
            import ml_dtypes

            return np.asarray(a, dtype=np.float64).astype(ml_dtypes.bfloat16)
        return np.asarray(a, dtype=dtype)

    return Framework(
        "numpy",
        tensor,
        lambda t: np.asarray(t, dtype=np.float64),
        lambda t: np.asarray(t).dtype.name,
        lambda t: isinstance(t, (np.ndarray, np.generic)),
        contextlib.nullcontext,
    )


def _torch() -> Framework:
    import torch

    return Framework(
        "torch",
        lambda a, dtype="float64": torch.tensor(
            np.asarray(a, dtype=np.float64), dtype=getattr(torch, dtype)
        ),
        lambda t: t.detach().to(torch.float64).cpu().numpy(),
        lambda t: str(t.dtype).removeprefix("torch."),
        lambda t: isinstance(t, torch.Tensor),
        contextlib.nullcontext,
    )


def _jax() -> Framework:
    import jax
    import jax.numpy as jnp

    return Framework(
        "jax",
        lambda a, dtype="float64": jnp.asarray(
            np.asarray(a, dtype=np.float64).astype(jnp.dtype(dtype))
        ),
        lambda t: np.asarray(t).astype(np.float64),
        lambda t: np.dtype(t.dtype).name,
        lambda t: isinstance(t, jax.Array),
        lambda: jax.enable_x64(True),
    )


def _tensorflow() -> Framework:
    import tensorflow as tf

    return Framework(
        "tensorflow",
        lambda a, dtype="float64": tf.constant(
            np.asarray(a, dtype=np.float64), dtype=getattr(tf, dtype)
        ),
        lambda t: tf.cast(t, tf.float64).numpy(),
        lambda t: t.dtype.name,
        lambda t: isinstance(t, tf.Tensor),
        contextlib.nullcontext,
    )


_MAKERS = {"numpy": _numpy, "torch": _torch, "jax": _jax, "tensorflow": _tensorflow}
INSTALLED = [n for n in _MAKERS if importlib.util.find_spec(n) is not None]


def get_framework(name: str) -> Framework:
    return _MAKERS[name]()


@pytest.fixture(params=INSTALLED)
def fw(request: pytest.FixtureRequest) -> Iterator[Framework]:
    """One framework per parameter; float64 is enabled (JAX x64) for the test's duration."""
    framework = get_framework(request.param)
    with framework.x64():
        yield framework


def flat_objective(fw: Framework, flat_fun: Callable, keys_order: list | None = None) -> Callable:
    """Lift a NumPy ``(value, grad)`` function of the flat vector to a dict objective in ``fw``.

    The dict's entries are concatenated in their key order (or ``keys_order``), so the bridge is
    compared with plain SciPy on exactly the same arithmetic. Gradients are returned in the
    framework's tensors, with each entry's dtype, and with keys in *reversed* order to prove the
    bridge matches by key.
    """

    def fun(d: Any, *args: Any) -> tuple[Any, dict]:
        keys = keys_order or list(d.keys())
        parts = [fw.to_numpy(d[k]).ravel() for k in keys]
        value, grad = flat_fun(np.concatenate(parts), *args)
        out = {}
        start = 0
        for k, p in zip(keys, parts, strict=True):
            g = grad[start : start + p.size].reshape(np.shape(fw.to_numpy(d[k])))
            out[k] = fw.tensor(g, fw.dtype_name(d[k]))
            start += p.size
        return value, dict(reversed(list(out.items())))

    return fun


def derandomized(env: str, default: int) -> Any:
    """hypothesis settings of the suite: reproducible on every machine, sized by ``env``."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=int(os.environ.get(env, str(default))),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


#: SciPy's compiled L-BFGS-B core rounds by its arrays' memory alignment on some BLAS kernels
#: (OPENBLAS_CORETYPE=Prescott shows it: ~1e-16 that can change an iteration count), so the
#: batched driver's copy of its state equals SciPy's own bit for bit only on the native kernel;
#: the tests that demand SciPy's exact counts from it skip where a kernel is forced
exact_lbfgsb_core = pytest.mark.skipif(
    bool(os.environ.get("OPENBLAS_CORETYPE")),
    reason="a forced BLAS kernel: SciPy's L-BFGS-B core rounds by memory alignment there",
)
