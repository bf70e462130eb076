"""dict_minimize: ``scipy.optimize.minimize`` over a dict of NumPy, PyTorch, JAX or TF tensors.

Importing this package imports no framework: backends load when their tensors show up.

Example:
    >>> import numpy as np
    >>> import dict_minimize
    >>> res = dict_minimize.minimize(
    ...     lambda d: (float(d["x"] @ d["x"]), {"x": 2 * d["x"]}), {"x": np.ones(3)})
    >>> res.success
    True
"""

from dict_minimize._compare.compare import compare, compare_table
from dict_minimize._problem.constraints import LinearConstraint, NonlinearConstraint
from dict_minimize._problem.history import read_log
from dict_minimize._problem.methods import Method, methods
from dict_minimize._problem.objective import NonFiniteError
from dict_minimize._problem.trace import Trace
from dict_minimize._scale.many import minimize_many, multistart
from dict_minimize._solvers.batched import BatchedResult, minimize_batched
from dict_minimize._solvers.least_squares import least_squares
from dict_minimize._solvers.minimize import OptimizeResult, PrecisionWarning, minimize
from dict_minimize._solvers.minimize_steps import METHODS
from dict_minimize._solvers.root import root
from dict_minimize._version import __version__

__all__ = [
    "METHODS",
    "BatchedResult",
    "LinearConstraint",
    "Method",
    "NonFiniteError",
    "NonlinearConstraint",
    "OptimizeResult",
    "PrecisionWarning",
    "Trace",
    "__version__",
    "compare",
    "compare_table",
    "least_squares",
    "methods",
    "minimize",
    "minimize_batched",
    "minimize_many",
    "multistart",
    "read_log",
    "root",
]
