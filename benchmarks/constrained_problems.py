"""Scalable constrained problems for ``method="ipopt"`` (and trust-constr, SLSQP), written once
for JAX, PyTorch and NumPy, each with a hand-written cyipopt floor (hand-coded sparse
derivatives) and a reference optimum that does not come from Ipopt.

- ``chain``: the COPS hanging chain. The chain hangs from ``(0, a)`` to ``(1, b)`` with length
  ``L``; heights ``y`` at ``N + 1`` points, ``s`` the running length along the chain (so every
  constraint row ``s[i+1] - s[i] = |segment i|`` touches 4 variables), energy
  ``Σ (y[i] + y[i+1]) / 2 · |segment i|``. Reference: the continuous catenary (``N → ∞``),
  computed from its closed form.
- ``cart``: rest-to-rest transfer of a cart (a double integrator) over ``t ∈ [0, 1]`` with the
  least control energy ``∫ u²``, positions and velocities tied by the dynamics as equality
  constraints (trapezoid for the position, Euler for the velocity), ``|u| <= u_max`` as bounds.
  Reference: the continuous optimum ``u(t) = clip(β (1/2 − t), −u_max, u_max)``.
- ``electrons``: ``N`` electrons on the unit sphere (COPS ``elec``, the Thomson problem):
  Coulomb energy ``Σ_{i<j} 1/|r_i − r_j|`` with ``|r_i|² = 1``. Nonconvex, dense Hessian.
  Reference: the known minimal energies.

No framework is imported at module level.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.integrate
import scipy.optimize
import scipy.sparse

#: the COPS chain's data
CHAIN_A, CHAIN_B, CHAIN_L = 1.0, 3.0, 4.0
#: the cart's control bound
CART_UMAX = 5.0
#: minimal Coulomb energies of N electrons on the unit sphere (the Thomson problem)
THOMSON = {
    2: 0.5,
    3: 1.732050808,
    4: 3.674234614,
    5: 6.474691495,
    6: 9.985281374,
    12: 49.165253058,
    32: 412.261274651,
    100: 4448.350634331,
}


@dataclass
class Ops:
    """The few framework functions the problems need (``+ - * / **`` and slicing are shared)."""

    concat: Callable[[list], Any]
    sqrt: Callable[[Any], Any]
    sum: Callable[[Any], Any]
    const: Callable[[float, Any], Any]  # (value, like) -> a (1,) tensor of like's dtype
    stack: Callable[[list, int], Any]
    array: Callable[[np.ndarray, Any], Any]  # (NumPy array, like) -> a tensor of like's dtype


def ops_for(framework: str) -> Ops:
    """The :class:`Ops` of ``'numpy'``, ``'jax'``, ``'torch'`` or ``'tensorflow'``."""
    if framework == "jax":
        import jax.numpy as jnp

        return Ops(
            jnp.concatenate,
            jnp.sqrt,
            jnp.sum,
            lambda v, t: jnp.full((1,), v, t.dtype),
            jnp.stack,
            lambda a, t: jnp.asarray(a, t.dtype),
        )
    if framework == "torch":
        import torch

        return Ops(
            torch.cat,
            torch.sqrt,
            torch.sum,
            lambda v, t: torch.full((1,), v, dtype=t.dtype),
            lambda xs, axis: torch.stack(xs, dim=axis),
            lambda a, t: torch.as_tensor(a, dtype=t.dtype),
        )
    if framework == "tensorflow":
        import tensorflow as tf

        return Ops(
            lambda xs: tf.concat(xs, 0),
            tf.sqrt,
            tf.reduce_sum,
            lambda v, t: tf.fill((1,), tf.cast(v, t.dtype)),
            lambda xs, axis: tf.stack(xs, axis=axis),
            lambda a, t: tf.constant(a, dtype=t.dtype),
        )
    return Ops(
        np.concatenate, np.sqrt, np.sum, lambda v, t: np.full((1,), v), np.stack, lambda a, t: a
    )


def to_framework(x0: dict[str, np.ndarray], framework: str) -> dict[str, Any]:
    """``x0`` as float64 tensors of ``framework``."""
    if framework == "jax":
        import jax.numpy as jnp

        return {k: jnp.asarray(v) for k, v in x0.items()}
    if framework == "torch":
        import torch

        return {k: torch.tensor(v) for k, v in x0.items()}
    if framework == "tensorflow":
        import tensorflow as tf

        return {k: tf.constant(v) for k, v in x0.items()}
    return {k: np.array(v) for k, v in x0.items()}


@dataclass
class Problem:
    """One problem at one size: the dict problem, its flat floor, its reference."""

    name: str
    x0: dict[str, np.ndarray]
    objective: Callable[[Ops], Callable]  # ops -> fun(x_dict) -> scalar
    constraint: Callable[[Ops], Callable]  # ops -> c(x_dict) -> vector, lb <= c <= ub
    clb: Any
    cub: Any
    bounds: dict[str, tuple[float, float]] | None
    floor: Any  # the hand-written cyipopt problem object (NumPy, flat vector)
    reference: float  # the optimum the discretisation converges to (or the known optimum)
    jac_sparsity: Any = None  # (m, n) scipy.sparse pattern of the constraint's Jacobian
    hess_sparsity: Any = None  # (n, n) pattern of the objective's Hessian
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return sum(v.size for v in self.x0.values())

    def flat_x0(self) -> np.ndarray:
        return np.concatenate([v.ravel() for v in self.x0.values()])

    def flat_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lb, ub = [], []
        for k, v in self.x0.items():
            lo, hi = (self.bounds or {}).get(k, (-np.inf, np.inf))
            lb.append(np.full(v.size, lo))
            ub.append(np.full(v.size, hi))
        return np.concatenate(lb), np.concatenate(ub)


# -- the hanging chain -------------------------------------------------------------------------
def chain(N: int) -> Problem:
    """The COPS hanging chain on ``N`` intervals (the trapezoidal rule): slopes ``u`` at the
    ``N + 1`` points, heights ``y`` and running length ``s`` at the ``N − 1`` inner ones (the
    ends are fixed: ``y = a, b``, ``s = 0, L``); ``n = 3N − 1``, ``m = 2N``."""
    a, b, L, h = CHAIN_A, CHAIN_B, CHAIN_L, 1.0 / N
    t = np.linspace(0.0, 1.0, N + 1)
    tm = 0.25  # COPS's start: a parabola through both ends
    u0 = 4.0 * abs(b - a) * (t - tm)
    q0 = np.sqrt(1.0 + u0 * u0)
    s0 = np.concatenate([[0.0], np.cumsum(0.5 * h * (q0[1:] + q0[:-1]))])
    x0 = {"u": u0, "y": (4.0 * abs(b - a) * t * (0.5 * t - tm) + a)[1:-1], "s": s0[1:-1]}
    w = np.full(N + 1, h)
    w[[0, -1]] = 0.5 * h

    def objective(ops: Ops) -> Callable:
        def energy(d: Any) -> Any:
            Y = ops.concat([ops.const(a, d["y"]), d["y"], ops.const(b, d["y"])])
            return ops.sum(ops.array(w, Y) * Y * ops.sqrt(1.0 + d["u"] * d["u"]))

        return energy

    def constraint(ops: Ops) -> Callable:
        def dynamics(d: Any) -> Any:
            Y = ops.concat([ops.const(a, d["y"]), d["y"], ops.const(b, d["y"])])
            S = ops.concat([ops.const(0.0, d["s"]), d["s"], ops.const(L, d["s"])])
            u = d["u"]
            q = ops.sqrt(1.0 + u * u)
            c1 = Y[1:] - Y[:-1] - 0.5 * h * (u[1:] + u[:-1])
            c2 = S[1:] - S[:-1] - 0.5 * h * (q[1:] + q[:-1])
            return ops.concat([c1, c2])

        return dynamics

    floor = _ChainFloor(N)
    return Problem(
        "chain", x0, objective, constraint, 0.0, 0.0, None, floor, catenary_energy(),
        jac_sparsity=floor.jac_pattern(), hess_sparsity=floor.obj_hess_pattern(),
        info={"N": N, "m": 2 * N},
    )  # fmt: skip


def catenary_energy() -> float:
    """The potential energy of the continuous hanging chain (COPS data), from the catenary
    ``y(t) = c + A cosh((t − t0) / A)`` through ``(0, a)`` and ``(1, b)`` with length ``L``."""
    a, b, L = CHAIN_A, CHAIN_B, CHAIN_L

    def equations(p: np.ndarray) -> list[float]:
        c, A, t0 = p
        return [
            c + A * math.cosh(-t0 / A) - a,
            c + A * math.cosh((1 - t0) / A) - b,
            A * (math.sinh((1 - t0) / A) + math.sinh(t0 / A)) - L,
        ]

    c, A, t0 = scipy.optimize.fsolve(equations, [0.0, 0.3, 0.3], xtol=1e-12)
    value, _ = scipy.integrate.quad(
        lambda t: (c + A * math.cosh((t - t0) / A)) * math.cosh((t - t0) / A), 0, 1, epsabs=1e-13
    )
    return float(value)


class _ChainFloor:
    """The chain in hand-written cyipopt glue: value, gradient, sparse Jacobian and Hessian."""

    def __init__(self, N: int) -> None:
        self.N, self.h, self.n, self.m = N, 1.0 / N, 3 * N - 1, 2 * N
        i = np.arange(N)
        every = np.ones(N, bool)
        # columns: u_k -> k; y_k -> N + k; s_k -> 2N - 1 + k (k = 1..N-1)
        parts = [  # (rows, cols, which value, kept)
            (i, i, 0, every),  # c1: -h/2 at u_i
            (i, i + 1, 0, every),  # c1: -h/2 at u_{i+1}
            (i, N + i, 1, i >= 1),  # c1: -1 at y_i
            (i, N + i + 1, 2, i + 1 <= N - 1),  # c1: +1 at y_{i+1}
            (N + i, i, 3, every),  # c2: -h/2 q'(u_i)
            (N + i, i + 1, 4, every),  # c2: -h/2 q'(u_{i+1})
            (N + i, 2 * N - 1 + i, 1, i >= 1),  # c2: -1 at s_i
            (N + i, 2 * N + i, 2, i + 1 <= N - 1),  # c2: +1 at s_{i+1}
        ]
        self._parts = [(which, keep) for _, _, which, keep in parts]
        rows = np.concatenate([r[k] for r, _, _, k in parts])
        cols = np.concatenate([c[k] for _, c, _, k in parts])
        self._order = np.lexsort((cols, rows))
        self.jrows, self.jcols = rows[self._order], cols[self._order]
        k = np.arange(1, N)
        # Hessian (lower triangle): (u_k, u_k) for all k, (y_k, u_k) for inner k
        self.hrows = np.concatenate([np.arange(N + 1), N + k])
        self.hcols = np.concatenate([np.arange(N + 1), k])
        self.w = np.full(N + 1, self.h)
        self.w[[0, -1]] = 0.5 * self.h

    def jac_pattern(self) -> Any:
        return scipy.sparse.csr_array(
            (np.ones(self.jrows.size, bool), (self.jrows, self.jcols)), shape=(self.m, self.n)
        )

    def obj_hess_pattern(self) -> Any:
        r = np.concatenate([self.hrows, self.hcols[self.N + 1 :]])
        c = np.concatenate([self.hcols, self.hrows[self.N + 1 :]])
        return scipy.sparse.csr_array((np.ones(r.size, bool), (r, c)), shape=(self.n, self.n))

    def _split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        N = self.N
        u = x[: N + 1]
        Y = np.concatenate([[CHAIN_A], x[N + 1 : 2 * N], [CHAIN_B]])
        S = np.concatenate([[0.0], x[2 * N :], [CHAIN_L]])
        return u, Y, S

    def objective(self, x: np.ndarray) -> float:
        u, Y, _ = self._split(x)
        return float(np.sum(self.w * Y * np.sqrt(1.0 + u * u)))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        u, Y, _ = self._split(x)
        q = np.sqrt(1.0 + u * u)
        return np.concatenate([self.w * Y * u / q, self.h * q[1:-1], np.zeros(self.N - 1)])

    def constraints(self, x: np.ndarray) -> np.ndarray:
        u, Y, S = self._split(x)
        q = np.sqrt(1.0 + u * u)
        hh = 0.5 * self.h
        return np.concatenate(
            [np.diff(Y) - hh * (u[1:] + u[:-1]), np.diff(S) - hh * (q[1:] + q[:-1])]
        )

    def jacobianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        return self.jrows, self.jcols

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        u, _, _ = self._split(x)
        dq = u / np.sqrt(1.0 + u * u)
        hh = 0.5 * self.h
        N = self.N
        values = [np.full(N, -hh), -np.ones(N), np.ones(N), -hh * dq[:-1], -hh * dq[1:]]
        out = [values[w][k] for w, k in self._parts]
        return np.concatenate(out)[self._order]

    def hessianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        return self.hrows, self.hcols

    def hessian(self, x: np.ndarray, lagrange: np.ndarray, obj_factor: float) -> np.ndarray:
        u, Y, _ = self._split(x)
        q = np.sqrt(1.0 + u * u)
        lam = lagrange[self.N :]
        near = np.concatenate([lam, [0.0]]) + np.concatenate([[0.0], lam])  # λ_{i-1} + λ_i
        uu = (obj_factor * self.w * Y - 0.5 * self.h * near) / q**3
        yu = obj_factor * self.h * u[1:-1] / q[1:-1]
        return np.concatenate([uu, yu])


# -- the cart --------------------------------------------------------------------------------
def cart(N: int) -> Problem:
    """Rest-to-rest cart transfer with ``N`` steps: ``n = 3N − 2``, ``m = 2N``."""
    h = 1.0 / N
    t = np.linspace(0.0, 1.0, N + 1)
    x0 = {"p": t[1:-1].copy(), "v": np.zeros(N - 1), "u": np.zeros(N)}

    def objective(ops: Ops) -> Callable:
        def energy(d: Any) -> Any:
            return h * ops.sum(d["u"] * d["u"])

        return energy

    def constraint(ops: Ops) -> Callable:
        def dynamics(d: Any) -> Any:
            P = ops.concat([ops.const(0.0, d["p"]), d["p"], ops.const(1.0, d["p"])])
            V = ops.concat([ops.const(0.0, d["v"]), d["v"], ops.const(0.0, d["v"])])
            c1 = P[1:] - P[:-1] - 0.5 * h * (V[1:] + V[:-1])
            c2 = V[1:] - V[:-1] - h * d["u"]
            return ops.concat([c1, c2])

        return dynamics

    floor = _CartFloor(N)
    return Problem(
        "cart", x0, objective, constraint, 0.0, 0.0, {"u": (-CART_UMAX, CART_UMAX)}, floor,
        cart_energy(), jac_sparsity=floor.jac_pattern(), hess_sparsity=floor.obj_hess_pattern(),
        info={"N": N, "m": 2 * N},
    )  # fmt: skip


def cart_energy(umax: float = CART_UMAX) -> float:
    """``∫ u²`` of the continuous optimum: ``u = clip(β (1/2 − t), −umax, umax)`` with ``β``
    such that the cart ends at 1 (``∫ (1 − t) u dt = 1``)."""

    def u(t: float, beta: float) -> float:
        return min(max(beta * (0.5 - t), -umax), umax)

    def reach(beta: float) -> float:
        return scipy.integrate.quad(lambda t: (1 - t) * u(t, beta), 0, 1, limit=200)[0] - 1.0

    beta = scipy.optimize.brentq(reach, 1.0, 1e3, xtol=1e-14)
    return float(scipy.integrate.quad(lambda t: u(t, beta) ** 2, 0, 1, limit=200)[0])


class _CartFloor:
    """The cart in hand-written cyipopt glue (linear constraints: a constant Jacobian)."""

    def __init__(self, N: int) -> None:
        self.N, self.h = N, 1.0 / N
        np_, nv = N - 1, N - 1
        self.n, self.m = np_ + nv + N, 2 * N
        i = np.arange(N)
        entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

        def add(rows: np.ndarray, cols: np.ndarray, vals: Any, keep: np.ndarray) -> None:
            entries.append((rows[keep], cols[keep], np.broadcast_to(vals, rows.shape)[keep]))

        all_ = np.ones(N, bool)
        # c1_i = p_{i+1} - p_i - h/2 (v_i + v_{i+1});  p_k is col k-1, v_k col np_+k-1
        add(i, i, 1.0, i + 1 <= N - 1)
        add(i, i - 1, -1.0, i >= 1)
        add(i, np_ + i - 1, -0.5 * self.h, i >= 1)
        add(i, np_ + i, -0.5 * self.h, i + 1 <= N - 1)
        # c2_i = v_{i+1} - v_i - h u_i;  u_i is col np_+nv+i
        add(N + i, np_ + i, 1.0, i + 1 <= N - 1)
        add(N + i, np_ + i - 1, -1.0, i >= 1)
        add(N + i, np_ + nv + i, -self.h, all_)
        r = np.concatenate([e[0] for e in entries])
        c = np.concatenate([e[1] for e in entries])
        v = np.concatenate([e[2] for e in entries])
        A = scipy.sparse.csr_array((v, (r, c)), shape=(self.m, self.n))
        A.sort_indices()
        self.A = A
        coo = A.tocoo()
        self.jrows, self.jcols, self.jvals = coo.row, coo.col, coo.data
        self.b = np.zeros(self.m)
        self.b[N - 1] = 1.0  # c1 at the last step: p_N = 1 is a constant
        self.hidx = np.arange(np_ + nv, self.n)

    def jac_pattern(self) -> Any:
        return self.A.astype(bool)

    def obj_hess_pattern(self) -> Any:
        return scipy.sparse.csr_array(
            (np.ones(self.N, bool), (self.hidx, self.hidx)), shape=(self.n, self.n)
        )

    def objective(self, x: np.ndarray) -> float:
        u = x[self.hidx[0] :]
        return float(self.h * u @ u)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        g = np.zeros(self.n)
        g[self.hidx[0] :] = 2 * self.h * x[self.hidx[0] :]
        return g

    def constraints(self, x: np.ndarray) -> np.ndarray:
        return self.A @ x + self.b

    def jacobianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        return self.jrows, self.jcols

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        return self.jvals

    def hessianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        return self.hidx, self.hidx

    def hessian(self, x: np.ndarray, lagrange: np.ndarray, obj_factor: float) -> np.ndarray:
        return np.full(self.N, 2 * self.h * obj_factor)


# -- electrons on a sphere ------------------------------------------------------------------------
def electrons(N: int, seed: int = 0) -> Problem:
    """``N`` electrons on the unit sphere (keys ``x``, ``y``, ``z``): ``n = 3N``, ``m = N``."""
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(3, N))
    r /= np.linalg.norm(r, axis=0)
    x0 = {"x": r[0], "y": r[1], "z": r[2]}

    def objective(ops: Ops) -> Callable:
        def energy(d: Any) -> Any:
            R = ops.stack([d["x"], d["y"], d["z"]], 1)
            diff = R[:, None, :] - R[None, :, :]
            d2 = ops.sum(diff * diff, 2) + ops.array(np.eye(N), R)  # (the diagonal: N ones)
            return 0.5 * (ops.sum(1.0 / ops.sqrt(d2)) - N)

        return energy

    def constraint(ops: Ops) -> Callable:
        def on_sphere(d: Any) -> Any:
            return d["x"] * d["x"] + d["y"] * d["y"] + d["z"] * d["z"] - 1.0

        return on_sphere

    floor = _ElectronFloor(N)
    pattern = scipy.sparse.csr_array(
        (np.ones(3 * N, bool), (floor.jrows, floor.jcols)), shape=(N, 3 * N)
    )
    return Problem(
        "electrons", x0, objective, constraint, 0.0, 0.0, None, floor, THOMSON.get(N, math.nan),
        jac_sparsity=pattern, info={"N": N, "m": N},
    )  # fmt: skip


class _ElectronFloor:
    """Electrons in hand-written cyipopt glue: dense Hessian (all pairs), diagonal Jacobian."""

    def __init__(self, N: int) -> None:
        self.N, self.n, self.m = N, 3 * N, N
        i = np.arange(N)
        self.jrows = np.concatenate([i, i, i])
        self.jcols = np.concatenate([i, N + i, 2 * N + i])
        order = np.lexsort((self.jcols, self.jrows))
        self._order = order
        self.jrows, self.jcols = self.jrows[order], self.jcols[order]
        self.hrows, self.hcols = np.tril_indices(3 * N)

    def _pairs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        R = x.reshape(3, self.N).T
        D = R[:, None, :] - R[None, :, :]
        d = np.sqrt((D * D).sum(2) + np.eye(self.N))
        return D, d

    def objective(self, x: np.ndarray) -> float:
        _, d = self._pairs(x)
        return float(0.5 * ((1.0 / d).sum() - self.N))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        D, d = self._pairs(x)
        g = -(D / d[:, :, None] ** 3).sum(1)  # (N, 3)
        return g.T.reshape(-1)

    def constraints(self, x: np.ndarray) -> np.ndarray:
        R = x.reshape(3, self.N)
        return (R * R).sum(0) - 1.0

    def jacobianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        return self.jrows, self.jcols

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        return (2.0 * x)[self.jcols]

    def hessianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        return self.hrows, self.hcols

    def hessian(self, x: np.ndarray, lagrange: np.ndarray, obj_factor: float) -> np.ndarray:
        N = self.N
        D, d = self._pairs(x)
        inv3 = 1.0 / d**3
        np.fill_diagonal(inv3, 0.0)
        inv5 = 3.0 / d**5
        np.fill_diagonal(inv5, 0.0)
        # block (i, j), i != j, coordinates (a, b): δ_ab/d³ − 3 D_a D_b / d⁵
        H = np.empty((3, N, 3, N))
        for a in range(3):
            for b in range(3):
                off = (inv3 if a == b else 0.0) - inv5 * D[:, :, a] * D[:, :, b]
                H[a, :, b, :] = off
                H[a, np.arange(N), b, np.arange(N)] = -off.sum(1)
        H = obj_factor * H.reshape(3 * N, 3 * N)
        H[np.arange(3 * N), np.arange(3 * N)] += 2.0 * np.tile(lagrange, 3)
        return H[self.hrows, self.hcols]


# -- running ---------------------------------------------------------------------------------
PROBLEMS: dict[str, Callable[[int], Problem]] = {
    "chain": chain,
    "cart": cart,
    "electrons": electrons,
}


def size_for(name: str, n: int) -> int:
    """The discretisation (or electron count) giving about ``n`` variables."""
    if name == "chain":
        return (n + 1) // 3
    if name == "cart":
        return (n + 2) // 3
    return max(2, n // 3)


def solve_floor(prob: Problem, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
    """The hand-written cyipopt glue: Ipopt on the flat problem with hand-coded derivatives."""
    import cyipopt

    f = prob.floor
    lb, ub = prob.flat_bounds()
    m = f.m
    cl = np.broadcast_to(np.asarray(prob.clb, dtype=float), (m,))
    cu = np.broadcast_to(np.asarray(prob.cub, dtype=float), (m,))
    nit = [0]

    def intermediate(alg_mod: int, iter_count: int, *rest: Any) -> bool:
        nit[0] = iter_count
        return True

    glue = {name: getattr(f, name) for name in _CALLBACKS}
    nlp = cyipopt.Problem(
        n=f.n, m=m, problem_obj=_Glue(intermediate=intermediate, **glue), lb=lb, ub=ub, cl=cl,
        cu=cu,
    )  # fmt: skip
    for key, value in {"print_level": 0, "sb": "yes", **(options or {})}.items():
        nlp.add_option(key, value)
    x, info = nlp.solve(prob.flat_x0())
    info["nit"] = nit[0]
    return x, info


_CALLBACKS = (
    "objective",
    "gradient",
    "constraints",
    "jacobian",
    "jacobianstructure",
    "hessian",
    "hessianstructure",
)


class _Glue:
    """The floor's callbacks and an iteration counter, as cyipopt's ``problem_obj``."""

    def __init__(self, **callbacks: Any) -> None:
        self.__dict__.update(callbacks)
