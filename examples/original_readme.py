"""The four examples of the original ``dict_minimize`` README, in PyTorch, TensorFlow, NumPy, JAX.

Each optimizes a (modified) Rosenbrock function whose arguments are split into two chunks,
``"x_half_a"`` and ``"x_half_b"``, stored in an ``OrderedDict``, with an extra ``shift``
argument passed through ``args=(shift,)`` -- exactly as in the original package, through the
drop-in modules ``dict_minimize.<framework>_api``. Frameworks that are not installed are
skipped.

The original passed ``options={"disp": True}``; SciPy >= 1.17 deprecates ``disp`` for L-BFGS-B
(it warns), so these copies leave ``options`` out.

Run::

    python examples/original_readme.py                  # the original sizes
    python examples/original_readme.py --size 4         # n_a = n_b = 4 in every example
    python examples/original_readme.py --frameworks numpy jax
"""

from __future__ import annotations

import argparse
import importlib.util
from collections import OrderedDict
from collections.abc import Callable, Sequence


def torch_example(n_a: int = 2, n_b: int = 2) -> OrderedDict:
    import torch

    from dict_minimize.torch_api import minimize

    def rosen_obj(params, shift):
        """Based on augmented Rosenbrock from botorch."""
        X, Y = params["x_half_a"], params["x_half_b"]
        X = X - shift
        Y = Y - shift
        obj = 100 * (X[1] - X[0] ** 2) ** 2 + 100 * (Y[1] - Y[0] ** 2) ** 2
        return obj

    def d_rosen_obj(params, shift):
        obj = rosen_obj(params, shift=shift)
        da, db = torch.autograd.grad(obj, [params["x_half_a"], params["x_half_b"]])
        d_obj = OrderedDict([("x_half_a", da), ("x_half_b", db)])
        return obj, d_obj

    torch.manual_seed(123)

    shift = -1.0

    params = OrderedDict([("x_half_a", torch.randn((n_a,))), ("x_half_b", torch.randn((n_b,)))])

    params = minimize(d_rosen_obj, params, args=(shift,), method="L-BFGS-B")
    print(f"  objective at the solution: {float(rosen_obj(params, shift)):.3e}")
    return params


def tensorflow_example(n_a: int = 2, n_b: int = 2) -> OrderedDict:
    import tensorflow as tf

    from dict_minimize.tensorflow_api import minimize

    def rosen_obj(params, shift):
        """Based on augmented Rosenbrock from botorch."""
        X, Y = params["x_half_a"], params["x_half_b"]
        X = X - shift
        Y = Y - shift
        obj = 100 * (X[1] - X[0] ** 2) ** 2 + 100 * (Y[1] - Y[0] ** 2) ** 2
        return obj

    def d_rosen_obj(params, shift):
        with tf.GradientTape(persistent=True) as t:
            t.watch(params["x_half_a"])
            t.watch(params["x_half_b"])

            obj = rosen_obj(params, shift=shift)

        da = t.gradient(obj, params["x_half_a"])
        db = t.gradient(obj, params["x_half_b"])
        d_obj = OrderedDict([("x_half_a", da), ("x_half_b", db)])
        del t  # Explicitly drop the reference to the tape
        return obj, d_obj

    tf.random.set_seed(123)

    shift = -1.0

    params = OrderedDict(
        [("x_half_a", tf.random.normal((n_a,))), ("x_half_b", tf.random.normal((n_b,)))]
    )

    params = minimize(d_rosen_obj, params, args=(shift,), method="L-BFGS-B")
    print(f"  objective at the solution: {float(rosen_obj(params, shift)):.3e}")
    return params


def numpy_example(n_a: int = 3, n_b: int = 5) -> OrderedDict:
    import numpy as np
    from scipy.optimize import rosen, rosen_der

    from dict_minimize.numpy_api import minimize

    def rosen_obj(params, shift):
        val = rosen(params["x_half_a"] - shift) + rosen(params["x_half_b"] - shift)

        dval = OrderedDict(
            [
                ("x_half_a", rosen_der(params["x_half_a"] - shift)),
                ("x_half_b", rosen_der(params["x_half_b"] - shift)),
            ]
        )
        return val, dval

    np.random.seed(0)

    shift = -1.0

    params = OrderedDict([("x_half_a", np.random.randn(n_a)), ("x_half_b", np.random.randn(n_b))])

    params = minimize(rosen_obj, params, args=(shift,), method="L-BFGS-B")
    print(f"  objective at the solution: {float(rosen_obj(params, shift)[0]):.3e}")
    return params


def jax_example(n_a: int = 3, n_b: int = 5) -> OrderedDict:
    import jax.numpy as np
    from jax import random, value_and_grad

    from dict_minimize.jax_api import minimize

    def rosen(x):
        r = np.sum(100.0 * (x[1:] - x[:-1] ** 2.0) ** 2.0 + (1 - x[:-1]) ** 2.0, axis=0)
        return r

    def rosen_obj(params, shift):
        val = rosen(params["x_half_a"] - shift) + rosen(params["x_half_b"] - shift)
        return val

    shift = -1.0

    # Jax makes it this simple:
    d_rosen_obj = value_and_grad(rosen_obj, argnums=0)

    # Setup randomness in JAX
    key = random.PRNGKey(0)
    key, subkey_a = random.split(key)
    key, subkey_b = random.split(key)

    params = OrderedDict(
        [
            ("x_half_a", random.normal(subkey_a, shape=(n_a,))),
            ("x_half_b", random.normal(subkey_b, shape=(n_b,))),
        ]
    )

    params = minimize(d_rosen_obj, params, args=(shift,), method="L-BFGS-B")
    print(f"  objective at the solution: {float(rosen_obj(params, shift)):.3e}")
    return params


#: framework -> (example, its default (n_a, n_b)), in the original README's order
EXAMPLES: dict[str, tuple[Callable[..., OrderedDict], tuple[int, int]]] = {
    "torch": (torch_example, (2, 2)),
    "tensorflow": (tensorflow_example, (2, 2)),
    "numpy": (numpy_example, (3, 5)),
    "jax": (jax_example, (3, 5)),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, default=None, help="n_a = n_b = SIZE (>= 2); default: the original's"
    )
    parser.add_argument(
        "--frameworks", nargs="+", default=list(EXAMPLES), choices=list(EXAMPLES), metavar="NAME"
    )
    args = parser.parse_args(argv)
    if args.size is not None and args.size < 2:
        parser.error("--size must be at least 2 (the objectives use x[0] and x[1])")

    for name in args.frameworks:
        example, (n_a, n_b) = EXAMPLES[name]
        if importlib.util.find_spec(name) is None:
            print(f"{name}: skipped (not installed)")
            continue
        if args.size is not None:
            n_a = n_b = args.size
        print(f"{name} (n_a={n_a}, n_b={n_b}):")
        params = example(n_a, n_b)
        for key, value in params.items():
            print(f"  {key} = {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
