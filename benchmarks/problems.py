"""The benchmark problems: data, the NumPy objective of the flat vector, and each framework's
loss written once.

Every problem gives

- ``x0`` as NumPy arrays (key order = the flat vector's order), bounds, SciPy options;
- ``data``: the fixed NumPy arrays the objective reads (passed as ``args``);
- ``loss(d, *data, ops)``: the objective written once for PyTorch, JAX and TensorFlow with the
  small ``Ops`` namespace below (the frameworks differentiate it);
- ``numpy_vg(d, *data)``: value and gradient dict by hand, for the NumPy contenders;
- ``flat_vg(x, *data)``: value and gradient of the flat float64 vector: the floor.

No framework is imported here at module level: workers import only the framework they run.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize

#: problem name -> dtypes it is run in
DTYPES = {
    "many_small": ("float64", "float32"),
    "one_big": ("float64", "float32"),
    "rosen_split": ("float64",),
    "calibration": ("float64",),
    "mlp": ("float64",),
}
#: the --quick run's dtypes (float64 only)
QUICK_DTYPES = {name: dtypes[:1] for name, dtypes in DTYPES.items()}
#: problems whose time to solution is compared with the frameworks' own optimizers
OWN_OPTIMIZERS = ("calibration", "mlp")


def sizes(scale: str) -> dict[str, dict[str, int]]:
    """Problem sizes for ``scale`` in ('full', 'quick', 'tiny')."""
    full = {
        "many_small": {"keys": 2000, "size": 8, "maxiter": 20},
        "one_big": {"n": 4_000_000, "maxiter": 6},
        "rosen_split": {"n": 1000, "keys": 4, "maxiter": 15000},
        "calibration": {"n": 1_000_000, "maxiter": 15000},
        "mlp": {"rows": 20_000, "features": 20, "hidden": 32, "maxiter": 150},
    }
    if scale == "full":
        return full
    if scale == "quick":
        full["many_small"].update(keys=500, maxiter=10)
        full["one_big"].update(n=1_000_000, maxiter=3)
        full["calibration"].update(n=200_000)
        full["mlp"].update(maxiter=60)
        return full
    return {  # tiny: the smoke test
        "many_small": {"keys": 12, "size": 3, "maxiter": 4},
        "one_big": {"n": 2000, "maxiter": 3},
        "rosen_split": {"n": 20, "keys": 4, "maxiter": 200},
        "calibration": {"n": 500, "maxiter": 200},
        "mlp": {"rows": 64, "features": 3, "hidden": 4, "maxiter": 10},
    }


@dataclass(frozen=True)
class Ops:
    """The few framework functions the losses need (``+ - * / @ **`` and slicing are shared)."""

    sum: Callable[[Any], Any]
    mean: Callable[[Any], Any]
    stack: Callable[[list], Any]
    concat: Callable[[list], Any]
    tanh: Callable[[Any], Any]
    softplus: Callable[[Any], Any]


@dataclass
class Problem:
    """One benchmark problem in one dtype."""

    name: str
    dtype: str
    x0: OrderedDict[str, np.ndarray]
    data: tuple[np.ndarray, ...]
    loss: Callable[..., Any]
    numpy_vg: Callable[..., tuple[float, dict]]
    flat_vg: Callable[..., tuple[float, np.ndarray]]
    options: dict[str, Any]
    lb: dict[str, float] | None = None
    method: str = "L-BFGS-B"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return sum(v.size for v in self.x0.values())

    @property
    def keys(self) -> list[str]:
        return list(self.x0)

    def flat_x0(self) -> np.ndarray:
        return np.concatenate([v.ravel() for v in self.x0.values()]).astype(np.float64)

    def flat_bounds(self) -> scipy.optimize.Bounds | None:
        if self.lb is None:
            return None
        lo = np.concatenate([np.full(v.size, self.lb.get(k, -np.inf)) for k, v in self.x0.items()])
        return scipy.optimize.Bounds(lo, np.full(self.n, np.inf))

    def split(self, x: np.ndarray) -> OrderedDict[str, np.ndarray]:
        """Views of the flat vector, one per key."""
        out, start = OrderedDict(), 0
        for k, v in self.x0.items():
            out[k] = x[start : start + v.size].reshape(v.shape)
            start += v.size
        return out


def _flat_from_dict(prob: Problem) -> Callable[..., tuple[float, np.ndarray]]:
    """The floor of a problem whose math reads several parameters: views in, one concatenate
    out (what a careful NumPy user writes around the flat vector)."""
    keys, numpy_vg, split = prob.keys, prob.numpy_vg, prob.split

    def flat_vg(x: np.ndarray, *data: Any) -> tuple[float, np.ndarray]:
        value, grads = numpy_vg(split(x), *data)
        return value, np.concatenate([np.ravel(grads[k]) for k in keys])

    return flat_vg


# --- many_small: 2,000 keys of shape (8,) ----------------------------------------------------


def many_small(dtype: str, keys: int, size: int, maxiter: int) -> Problem:
    rng = np.random.default_rng(1)
    names = [f"p{i:04d}" for i in range(keys)]
    c = rng.normal(size=(keys, size)).astype(dtype)
    w = rng.uniform(1.0, 10.0, size=(keys, size)).astype(dtype)
    x0 = OrderedDict((k, np.zeros(size, dtype=dtype)) for k in names)

    def loss(d: Any, c: Any, w: Any, ops: Ops) -> Any:
        r = ops.stack([d[k] for k in names]) - c
        return ops.sum(w * r * r) + 0.1 * ops.sum(r * r * r * r)

    def value_grad(X: np.ndarray, c: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
        r = X - c
        r2 = r * r
        return float(np.sum(w * r2) + 0.1 * np.sum(r2 * r2)), 2 * w * r + 0.4 * r2 * r

    def numpy_vg(d: Any, c: np.ndarray, w: np.ndarray) -> tuple[float, dict]:
        value, G = value_grad(np.stack([d[k] for k in names]), c, w)
        return value, OrderedDict(zip(names, G, strict=True))

    def flat_vg(x: np.ndarray, c: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
        value, G = value_grad(x.reshape(keys, size), c, w)
        return value, G.ravel()

    return Problem("many_small", dtype, x0, (c, w), loss, numpy_vg, flat_vg, {"maxiter": maxiter})


# --- one_big: one tensor of 4,000,000 elements -----------------------------------------------


def one_big(dtype: str, n: int, maxiter: int) -> Problem:
    rng = np.random.default_rng(2)
    c = rng.normal(size=n).astype(dtype)
    w = rng.uniform(1.0, 10.0, size=n).astype(dtype)
    x0 = OrderedDict(x=np.zeros(n, dtype=dtype))

    def loss(d: Any, c: Any, w: Any, ops: Ops) -> Any:
        r = d["x"] - c
        return ops.sum(w * r * r)

    def flat_vg(x: np.ndarray, c: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
        r = x - c
        wr = w * r
        return float(wr @ r), 2 * wr

    def numpy_vg(d: Any, c: np.ndarray, w: np.ndarray) -> tuple[float, dict]:
        value, g = flat_vg(d["x"], c, w)
        return value, OrderedDict(x=g)

    return Problem("one_big", dtype, x0, (c, w), loss, numpy_vg, flat_vg, {"maxiter": maxiter})


# --- rosen_split: Rosenbrock in 1,000 dims over 4 keys, to tolerance ---------------------------


def rosen_split(dtype: str, n: int, keys: int, maxiter: int) -> Problem:
    bounds = np.linspace(0, n, keys + 1).astype(int)
    # a fixed random start around the minimum at 1: ~350 evaluations to SciPy's tolerance
    # (the classic (-1.2, 1, ...) start takes ~5,800 in 1,000 dims)
    start = (1.0 + np.random.default_rng(5).normal(size=n)).astype(dtype)
    names = [f"part{i}" for i in range(keys)]
    cuts = list(zip(names, bounds[:-1], bounds[1:], strict=True))
    x0 = OrderedDict((k, start[a:b].copy()) for k, a, b in cuts)

    def loss(d: Any, ops: Ops) -> Any:
        x = ops.concat([d[k] for k in names])
        return ops.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def flat_vg(x: np.ndarray) -> tuple[float, np.ndarray]:
        return float(scipy.optimize.rosen(x)), scipy.optimize.rosen_der(x)

    def numpy_vg(d: Any) -> tuple[float, dict]:
        x = np.concatenate([d[k] for k in names])
        value, g = flat_vg(x)
        return value, OrderedDict((k, g[a:b]) for k, a, b in cuts)

    return Problem("rosen_split", dtype, x0, (), loss, numpy_vg, flat_vg, {"maxiter": maxiter})


# --- calibration: beta calibration on (score, label) pairs, a, b >= 0 ---------------------------


def calibration(dtype: str, n: int, maxiter: int) -> Problem:
    """Beta calibration (examples/beta_calibration.py): logit p' = a ln p - b ln(1 - p) + c."""
    rng = np.random.default_rng(3)
    p = np.clip(rng.beta(2.0, 2.0, size=n), 1e-6, 1 - 1e-6)
    lp, l1p = np.log(p), np.log1p(-p)
    z_true = 2.0 * lp - 0.6 * l1p - 0.3
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z_true))).astype(np.float64)
    data = (lp.astype(dtype), l1p.astype(dtype), y.astype(dtype))
    x0 = OrderedDict(
        a=np.array(1.0, dtype=dtype), b=np.array(1.0, dtype=dtype), c=np.array(0.0, dtype=dtype)
    )

    def loss(d: Any, lp: Any, l1p: Any, y: Any, ops: Ops) -> Any:
        z = d["a"] * lp - d["b"] * l1p + d["c"]
        return ops.mean(ops.softplus(z) - y * z)

    def numpy_vg(d: Any, lp: np.ndarray, l1p: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
        z = d["a"] * lp - d["b"] * l1p + d["c"]
        value = float(np.mean(np.logaddexp(0.0, z) - y * z))
        dz = (1.0 / (1.0 + np.exp(-z)) - y) / z.size
        grads = {"a": dz @ lp, "b": -(dz @ l1p), "c": dz.sum()}
        return value, OrderedDict((k, np.asarray(g, dtype=z.dtype)) for k, g in grads.items())

    prob = Problem(
        "calibration", dtype, x0, data, loss, numpy_vg, lambda x: (0.0, x), {"maxiter": maxiter}
    )
    prob.lb = {"a": 0.0, "b": 0.0}
    prob.flat_vg = _flat_from_dict(prob)
    return prob


# --- mlp: a 2-layer MLP, full batch ----------------------------------------------------------


def mlp(dtype: str, rows: int, features: int, hidden: int, maxiter: int) -> Problem:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(rows, features))
    y = np.sin(X[:, 0]) + 0.5 * np.tanh(X[:, 1] * X[:, 2 % features]) + 0.1 * rng.normal(size=rows)
    data = (X.astype(dtype), y.astype(dtype))
    x0 = OrderedDict(
        W1=(rng.normal(size=(features, hidden)) / math.sqrt(features)).astype(dtype),
        b1=np.zeros(hidden, dtype=dtype),
        W2=(rng.normal(size=(hidden, 1)) / math.sqrt(hidden)).astype(dtype),
        b2=np.zeros(1, dtype=dtype),
    )

    def loss(d: Any, X: Any, y: Any, ops: Ops) -> Any:
        h = ops.tanh(X @ d["W1"] + d["b1"])
        r = (h @ d["W2"] + d["b2"])[:, 0] - y
        return ops.mean(r * r)

    def numpy_vg(d: Any, X: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
        h = np.tanh(X @ d["W1"] + d["b1"])
        r = (h @ d["W2"] + d["b2"])[:, 0] - y
        dout = (2.0 / r.size) * r[:, None]
        dz = (dout @ d["W2"].T) * (1.0 - h * h)
        grads = OrderedDict(W1=X.T @ dz, b1=dz.sum(0), W2=h.T @ dout, b2=dout.sum(0))
        return float(np.mean(r * r)), grads

    prob = Problem("mlp", dtype, x0, data, loss, numpy_vg, lambda x: (0.0, x), {"maxiter": maxiter})
    prob.flat_vg = _flat_from_dict(prob)
    return prob


BUILDERS: dict[str, Callable[..., Problem]] = {
    "many_small": many_small,
    "one_big": one_big,
    "rosen_split": rosen_split,
    "calibration": calibration,
    "mlp": mlp,
}


def build(name: str, dtype: str, scale: str) -> Problem:
    """The problem ``name`` in ``dtype`` at ``scale``."""
    return BUILDERS[name](dtype, **sizes(scale)[name])
