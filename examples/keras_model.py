"""A small Keras regression fitted with L-BFGS-B by ``minimize_model``, one bias bounded.

A ``keras.Sequential`` network (one tanh hidden layer) learns y = sin(2x) + 1 + noise on
synthetic data from a fixed seed. Full-batch problems of this size are where a quasi-Newton
method with exact gradients beats stochastic optimizers per gradient evaluation; here
:func:`dict_minimize.tensorflow_api.minimize_model` runs SciPy's L-BFGS-B over the model's
variables, keyed by their Keras paths, and assigns the solution into the model in place. The
output layer's bias is kept at or below ``BIAS_UPPER`` with ``ub_dict``, so the offset of 1
must come from the hidden layer instead.

Run::

    python examples/keras_model.py               # 256 samples
    python examples/keras_model.py --size 64 --seed 1
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from _shared import requires

with requires(__file__):
    import keras
    import tensorflow as tf

    from dict_minimize.tensorflow_api import minimize_model

#: the output layer's bias is bounded above by this
BIAS_UPPER = 0.0
#: units of the hidden layer
HIDDEN = 16
#: the path of the bounded variable (Keras 3 paths: model name / layer name / variable name)
BIAS_PATH = "regression/out/bias"


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic (x, y) pairs, float64 arrays of shape (n, 1), from a fixed seed."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, size=(n, 1))
    y = np.sin(2.0 * x) + 1.0 + 0.05 * rng.normal(size=(n, 1))
    return x, y


def make_model(seed: int = 0) -> keras.Model:
    """The network, float64, with seeded initial weights."""
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(
                HIDDEN, "tanh", kernel_initializer=init, name="hidden", dtype="float64"
            ),
            keras.layers.Dense(1, kernel_initializer=init, name="out", dtype="float64"),
        ],
        name="regression",
    )


def mse(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tf.Tensor:
    """The loss: mean squared error on the whole data set (a scalar tensor)."""
    return tf.reduce_mean((model(x) - y) ** 2)


@dataclass
class Fit:
    """What the fit did."""

    loss_before: float
    loss_after: float
    bias: np.ndarray
    nit: int
    nfev: int
    success: bool


def fit(n: int = 256, seed: int = 0) -> Fit:
    """Fit the network on ``n`` synthetic samples with L-BFGS-B, in place."""
    x, y = make_data(n, seed)
    model = make_model(seed)
    before = float(mse(model, x, y))
    res = minimize_model(
        model,
        mse,
        args=(x, y),
        method="L-BFGS-B",
        ub_dict={BIAS_PATH: BIAS_UPPER},
        options={"maxiter": 2000},
    )
    out_layer = model.get_layer("out")
    return Fit(
        loss_before=before,
        loss_after=float(mse(model, x, y)),  # the model holds the solution
        bias=np.asarray(out_layer.bias.numpy()),
        nit=res.nit,
        nfev=res.nfev,
        success=res.success,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="number of samples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the weights")
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error("--size must be positive")

    r = fit(args.size, args.seed)
    print(f"Keras regression on {args.size} synthetic samples (seed {args.seed}), L-BFGS-B")
    print(f"  loss before: {r.loss_before:.6f}")
    print(f"  loss after:  {r.loss_after:.6f}  ({r.nit} iterations, {r.nfev} evaluations)")
    print(f"  output bias: {r.bias[0]:.6f}  (bounded above by {BIAS_UPPER})")
    ok = r.success and r.loss_after < r.loss_before and bool(np.all(r.bias <= BIAS_UPPER))
    if not ok:
        print("  FAILED: the fit did not converge, did not improve, or broke the bound")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
