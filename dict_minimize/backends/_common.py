"""Helpers shared by the backends and the driver (no framework imports)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dict_minimize._errors import fmt_dtype, fmt_shape, type_name

#: NumPy's floating scalar types: a gradient entry of one of them is a valid 0-d gradient
FLOAT_SCALARS = frozenset({np.float16, np.float32, np.float64, np.longdouble})


class NotScalarError(ValueError, TypeError):
    """The objective returned more than one value (SciPy raises ValueError for most methods and
    TypeError for COBYQA: this is both)."""


def scalar_to_float(value: Any, what: str = "the objective") -> float:
    """A framework scalar, NumPy scalar or Python number as a float, or a clear error.

    Example:
        >>> scalar_to_float(np.float32(2.5))
        2.5
    """
    if isinstance(value, float):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{what} returned a {type_name(value)}; expected a real scalar")
    if isinstance(value, (tuple, list)):
        raise TypeError(
            f"{what} returned a {type_name(value)} of length {len(value)}; expected a real scalar"
        )
    shape = getattr(value, "shape", None)
    if shape is not None and tuple(shape) != ():
        if math.prod(tuple(shape)) != 1:
            raise NotScalarError(
                f"The user-provided objective function must return a scalar value: {what} "
                f"returned a value of shape {fmt_shape(shape)}; expected a scalar (shape ()) "
                "or one value. Reduce it, e.g. with .sum() or .mean()."
            )
        # one value in an array of any shape is a value, as in SciPy (np.array([v]))
        reshape = getattr(value, "reshape", None)
        value = reshape(()) if callable(reshape) else np.asarray(value).reshape(())
    dtype = getattr(value, "dtype", None)
    if dtype is not None and "complex" in str(dtype):
        raise TypeError(
            f"{what} returned a complex value ({fmt_dtype(dtype)}); expected a real scalar"
        )
    if dtype is not None and not is_real_dtype(dtype):
        raise TypeError(
            f"{what} returned a value of dtype {fmt_dtype(dtype)}; expected a real scalar"
        )
    detach = getattr(value, "detach", None)  # a PyTorch tensor: float() warns if it needs grad
    if callable(detach):
        value = detach()
    try:
        return float(value)
    except OverflowError:  # a Python int (or Fraction) beyond the float range
        raise ValueError(
            f"{what} returned a number too large for a float ({type_name(value)})"
        ) from None
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what} returned a {type_name(value)}, which is not a real scalar"
        ) from exc


def is_real_dtype(dtype: Any) -> bool:
    """True for the real integer and floating dtypes of NumPy, PyTorch, JAX and TensorFlow.

    Bool, complex, string, object, datetime and quantized dtypes are not real numbers.

    Example:
        >>> is_real_dtype(np.dtype("int32")), is_real_dtype(np.dtype(bool))
        (True, False)
    """
    if isinstance(dtype, np.dtype):
        return dtype.kind in "iu" or is_floating_np(dtype)
    # torch.float32 prints as 'torch.float32'; TensorFlow's DType has a .name
    name = getattr(dtype, "name", None) or str(dtype).removeprefix("torch.")
    return isinstance(name, str) and name.startswith(("float", "bfloat", "int", "uint"))


def is_floating_np(dtype: np.dtype) -> bool:
    """True for NumPy real floating dtypes, including ml_dtypes' bfloat16 and friends."""
    return dtype.kind == "f" or (dtype.kind == "V" and "float" in dtype.name)


def np_concat64(parts: list[np.ndarray], n: int) -> np.ndarray:
    """Concatenate 1-D pieces into one float64 vector of size ``n`` (one pass)."""
    if len(parts) == 1:
        return np.array(parts[0], dtype=np.float64, copy=True).reshape(n)
    return np.concatenate(parts, dtype=np.float64, casting="unsafe")


__all__ = ["fmt_shape", "is_floating_np", "is_real_dtype", "np_concat64", "scalar_to_float"]
