"""Drop-in ``minimize`` for NumPy arrays (the original ``dict_minimize.numpy_api``)."""

from dict_minimize._solvers.dropin import get_dtype, make_dropin
from dict_minimize.backends.numpy import from_np, to_np

minimize = make_dropin(
    "numpy",
    """
    >>> import numpy as np
    >>> from dict_minimize.numpy_api import minimize
    >>> def f(d):
    ...     return float((d["x"] - 2.0) @ (d["x"] - 2.0)), {"x": 2 * (d["x"] - 2.0)}
    >>> minimize(f, {"x": np.zeros(2)}, method="L-BFGS-B")["x"]
    array([2., 2.])
""",
)

__all__ = ["from_np", "get_dtype", "minimize", "to_np"]
