"""Sparse Jacobians and Hessians by autodiff with colouring (``jac_sparsity``, ``hess_sparsity``).

The colouring is checked on random patterns (valid, and within 2x of the maximum row count on
banded and block patterns); the decompressed Jacobians and Hessians against the dense autodiff
ones of the same backend; sparse runs of trust-constr and least_squares against dense ones; and
every error a pattern can cause.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import scipy.sparse
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from dict_minimize import NonlinearConstraint, least_squares, minimize
from dict_minimize._problem.constraints import make_constraints
from dict_minimize._problem.sparsity import (
    SparseDerivative,
    color_columns,
    color_symmetric,
    jacobian_pattern,
    lagrangian_pattern,
)
from dict_minimize._structure.layout import make_layout
from dict_minimize.backends import get_backend
from tests.conftest import derandomized, get_framework

PATTERNS = derandomized("DICT_MINIMIZE_SPARSITY_EXAMPLES", 40)
# no shrinking: every example runs a framework, and a failure's example is small already
PRODUCTS = settings(
    derandomized("DICT_MINIMIZE_SPARSITY_PRODUCTS", 5), phases=[Phase.explicit, Phase.generate]
)
AD = [n for n in ("jax", "torch", "tensorflow") if importlib.util.find_spec(n) is not None]
JAX_TORCH = [n for n in ("jax", "torch") if n in AD]


@pytest.fixture(autouse=True)
def _x64() -> Iterator[None]:
    """float64 JAX arrays (x0 is made in the tests)."""
    if importlib.util.find_spec("jax") is None:
        yield
        return
    with get_framework("jax").x64():
        yield


@st.composite
def patterns(draw: Any, max_side: int = 14, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Random patterns; of one ``shape`` where each new shape costs (eager JAX compiles each
    operation once per shape)."""
    m = draw(st.integers(1, max_side)) if shape is None else shape[0]
    n = draw(st.integers(1, max_side)) if shape is None else shape[1]
    density = draw(st.floats(0.05, 0.6))
    seed = draw(st.integers(0, 2**31 - 1))
    return np.random.default_rng(seed).random((m, n)) < density


def _valid(pattern: np.ndarray, colors: np.ndarray) -> bool:
    """No two columns of one colour share a row."""
    return all((pattern[:, colors == c].sum(axis=1) <= 1).all() for c in np.unique(colors))


# --- colouring ---------------------------------------------------------------------------------


@PATTERNS
@given(pattern=patterns(max_side=40))
def test_colouring_is_valid(pattern: np.ndarray) -> None:
    colors, ncolors = color_columns(scipy.sparse.csr_array(pattern))
    assert colors.shape == (pattern.shape[1],)
    assert _valid(pattern, colors)
    assert ncolors == (colors.max() + 1 if pattern.any() else 1)
    assert ncolors >= pattern.sum(axis=1).max()  # a row's columns all differ
    rows, _ = color_columns(scipy.sparse.csr_array(pattern.T))
    assert _valid(pattern.T, rows)


def _banded(n: int, lower: int, upper: int) -> np.ndarray:
    i, j = np.indices((n, n))
    return (j - i <= upper) & (i - j <= lower)


@pytest.mark.parametrize(
    "pattern",
    [
        _banded(300, 1, 1),
        _banded(300, 0, 4),
        _banded(200, 3, 2)[:150],
        scipy.sparse.block_diag([np.ones((3, 4))] * 50).toarray() != 0,
        np.kron(_banded(40, 1, 1), np.ones((2, 3))) != 0,  # banded blocks
    ],
    ids=["tridiagonal", "upper-band", "band-rectangular", "block-diagonal", "block-banded"],
)
def test_colours_within_twice_the_row_count(pattern: np.ndarray) -> None:
    colors, ncolors = color_columns(scipy.sparse.csr_array(pattern))
    assert _valid(pattern, colors)
    assert ncolors <= 2 * pattern.sum(axis=1).max()


@PATTERNS
@given(pattern=patterns(max_side=30), dense=st.integers(1, 3))
def test_symmetric_colouring_recovers_every_entry(pattern: np.ndarray, dense: int) -> None:
    """Arrowhead-like patterns: each entry is read from a column whose colour no other column
    of its row shares — its own, or (a dense row) the dense column's, by symmetry."""
    n = pattern.shape[1]
    sym = np.eye(n, dtype=bool) | (
        pattern[:n, :n] if pattern.shape[0] >= n else np.eye(n, dtype=bool)
    )
    sym[:dense, :] = True
    sym = sym | sym.T
    colors, ncolors, is_dense = color_symmetric(scipy.sparse.csr_array(sym))
    assert ncolors <= color_columns(scipy.sparse.csr_array(sym))[1]
    for i, j in zip(*np.nonzero(sym), strict=True):
        row, col = (j, i) if is_dense is not None and is_dense[i] and not is_dense[j] else (i, j)
        others = np.flatnonzero(sym[row] & (colors == colors[col]))
        assert list(others) == [col]


def test_arrowhead_hessian_needs_few_colours() -> None:
    arrow = _banded(400, 1, 1)
    arrow[-1, :] = arrow[:, -1] = True
    assert color_symmetric(scipy.sparse.csr_array(arrow))[1] == 4
    assert color_columns(scipy.sparse.csr_array(arrow))[1] == 400


# --- compressed products == dense autodiff -----------------------------------------------------


def _ops(name: str) -> tuple[Any, Any, Any]:
    """(constant matrix, sin, matvec) of a framework, float64."""
    if name == "jax":
        import jax.numpy as jnp

        return (lambda a: jnp.asarray(a)), jnp.sin, (lambda a, x: a @ x)
    if name == "torch":
        import torch

        return (lambda a: torch.tensor(a)), torch.sin, (lambda a, x: a @ x)
    import tensorflow as tf

    return (lambda a: tf.constant(a)), tf.sin, (lambda a, x: tf.linalg.matvec(a, x))


def _concat(name: str, parts: list) -> Any:
    if name == "tensorflow":
        import tensorflow as tf

        return tf.concat(parts, 0)
    if name == "jax":
        import jax.numpy as jnp

        return jnp.concatenate(parts)
    import torch

    return torch.cat(parts)


_C: dict[str, Any] = {}


def _weighted(name: str) -> Any:
    """``c(d, w) = w @ sin(x) + (w @ x) ** 2``: its Jacobian has the pattern of ``w``. One
    function per framework, so compiled JAX products are traced once per number of colours."""
    if name not in _C:
        _, sin, matvec = _ops(name)

        def c(d: Any, w: Any) -> Any:
            x = _concat(name, [d["b"], d["a"]])
            return matvec(w, sin(x)) + matvec(w, x) ** 2

        _C[name] = c
    return _C[name]


def _problem(name: str, pattern: np.ndarray, seed: int) -> tuple[Any, Any, Any]:
    """x0 of two keys over the pattern's columns, ``c(d, w)`` whose Jacobian has that pattern,
    and ``args = (w,)`` (call it under ``fw.x64()``: float64 JAX arrays)."""
    fw = get_framework(name)
    n = pattern.shape[1]
    rng = np.random.default_rng(seed)
    weights = np.where(pattern, rng.uniform(0.5, 2.0, pattern.shape), 0.0)
    cut = n // 2
    x0 = {"b": fw.tensor(np.zeros(n - cut)), "a": fw.tensor(np.zeros((cut,)))}
    return x0, _weighted(name), (_ops(name)[0](weights),)


@pytest.mark.parametrize("name", AD)
@PRODUCTS
@given(pattern=patterns(shape=(7, 9)), seed=st.integers(0, 1000))
def test_decompressed_equals_dense(name: str, pattern: np.ndarray, seed: int) -> None:
    x0, c, args = _problem(name, pattern, seed)
    be = get_backend(name)
    lay = make_layout(x0, be)
    codec = be.make_codec(lay)
    jit = name == "jax"  # eager JAX compiles each operation for each number of colours
    dense = be.vector_ad(lay, codec, c, args, jit=jit)
    prods = be.sparse_products(lay, codec, c, args, jit=jit)
    x = np.random.default_rng(seed).normal(size=lay.n)
    want = dense.jacobian(x)
    p = scipy.sparse.csr_array(pattern)
    for mode in ("forward", "reverse"):
        got = SparseDerivative("jac", p, prods, "c", layout=lay, mode=mode).matrix(x)
        assert isinstance(got, scipy.sparse.csr_array)
        np.testing.assert_allclose(got.toarray(), want, rtol=1e-12, atol=1e-12)
    v = np.random.default_rng(seed + 1).normal(size=pattern.shape[0])
    hess = SparseDerivative("vhess", lagrangian_pattern(p), prods, "c", layout=lay)
    want_h = np.stack([dense.vhp(x, v, e) for e in np.eye(lay.n)], axis=1)
    np.testing.assert_allclose(hess.matrix(x, v).toarray(), want_h, rtol=1e-10, atol=1e-10)


def test_jax_compiled_products_equal_dense() -> None:
    pytest.importorskip("jax")
    pattern = _banded(9, 1, 2)[:7]
    x0, c, args = _problem("jax", pattern, 3)
    be = get_backend("jax")
    lay = make_layout(x0, be)
    x = np.linspace(-1, 1, lay.n)
    for jit in (False, True):
        prods = be.sparse_products(lay, None, lambda d, w: c(d, w), args, jit=jit)
        jac = SparseDerivative("jac", scipy.sparse.csr_array(pattern), prods, "c", layout=lay)
        want = be.vector_ad(lay, None, c, args, jit=jit).jacobian(x)
        np.testing.assert_allclose(jac.matrix(x).toarray(), want, rtol=1e-12, atol=1e-12)
        jac.values(x + 1.0)
        assert prods.fun_calls == (1 if jit else 2)  # one trace, reused at the next point


# --- the protocol Ipopt reads -------------------------------------------------------------------


@pytest.mark.parametrize("name", JAX_TORCH)
def test_constraints_carry_the_protocol(name: str) -> None:
    pattern = _banded(6, 0, 1)[:5]
    x0, c, args = _problem(name, pattern, 0)
    be = get_backend(name)
    lay = make_layout(x0, be)
    cons = [
        NonlinearConstraint(c, 0.0, 1.0, jac_sparsity=pattern, args=args),
        {"type": "eq", "fun": c, "args": args, "jac_sparsity": scipy.sparse.csr_array(pattern)},
        NonlinearConstraint(c, 0.0, 1.0, args=args),
    ]
    flat, _ = make_constraints(cons, lay, be.make_codec(lay), be, "trust-constr", None)
    x, v = np.linspace(0.1, 0.9, 6), np.arange(1.0, 6.0)
    for con in flat[:2]:
        jac, hess = con._dm_jac, con._dm_hess
        rows, cols = np.nonzero(pattern)  # row-major, as the protocol promises
        np.testing.assert_array_equal(jac.rows, rows)
        np.testing.assert_array_equal(jac.cols, cols)
        assert jac.shape == (5, 6) and hess.shape == (6, 6)
        np.testing.assert_array_equal(jac.values(x), jac.matrix(x).toarray()[rows, cols])
        h = hess.matrix(x, v).toarray()
        np.testing.assert_allclose(h, h.T, atol=1e-12)
        assert jac.ncolors == 2
    assert not hasattr(flat[2], "_dm_jac")


# --- sparse == dense on small problems ----------------------------------------------------------


def _chain(name: str, n: int) -> tuple[Any, Any, Any, Any]:
    """A smooth objective over a path with a banded Hessian, and a banded inequality (call it
    under ``fw.x64()``)."""
    fw = get_framework(name)
    const, _, _ = _ops(name)
    target = const(np.linspace(0.0, 1.0, n))

    def fun(d: Any) -> Any:
        x = d["x"]
        return (
            ((x - target) ** 2).sum()
            + 0.5 * ((x[1:] - x[:-1]) ** 4).sum()
            + ((d["s"] - 0.3) ** 2).sum()
        )

    def steps(d: Any) -> Any:  # |x[i+1] - x[i]| <= s, squared
        x = d["x"]
        return (x[1:] - x[:-1]) ** 2 - d["s"] ** 2

    x0 = {"x": fw.tensor(np.zeros(n)), "s": fw.tensor(np.array(0.2))}
    jac = {
        "x": np.eye(n - 1, n, dtype=bool) | np.eye(n - 1, n, k=1, dtype=bool),
        "s": np.ones(n - 1, dtype=bool),
    }
    return fw, x0, fun, (steps, jac)


@pytest.mark.parametrize("name", JAX_TORCH)
def test_trust_constr_sparse_equals_dense(name: str) -> None:
    n = 12
    fw, x0, fun, (steps, jac) = _chain(name, n)
    band = _banded(n, 1, 1)
    hess = {"x": {"x": band}, "s": {"s": np.ones((), dtype=bool)}}
    with fw.x64():
        kw: dict[str, Any] = {"jac": "autodiff", "method": "trust-constr"}
        sparse = minimize(
            fun,
            x0,
            constraints=NonlinearConstraint(steps, -np.inf, 0.0, jac_sparsity=jac),
            hess_sparsity=hess,
            check_sparsity=True,
            **kw,
        )
        dense = minimize(fun, x0, constraints=NonlinearConstraint(steps, -np.inf, 0.0), **kw)
    assert sparse.success and dense.success
    for k in ("x", "s"):
        np.testing.assert_allclose(fw.to_numpy(sparse.x[k]), fw.to_numpy(dense.x[k]), atol=1e-5)
    assert sparse.sparsity["hess"]["colors"] == 3
    con = sparse.sparsity["constraints"][0]
    assert con["jac"]["colors"] <= 2 * 3 and con["jac"]["nnz"] == 3 * (n - 1)
    assert con["hess"]["shape"] == (n + 1, n + 1)
    assert con["hess"]["colors"] == 4  # tridiagonal in x (3), and s in every row (1)
    assert "sparsity" not in dense


@pytest.mark.parametrize("name", JAX_TORCH)
def test_newton_cg_with_a_sparse_hessian(name: str) -> None:
    fw, x0, fun, _ = _chain(name, 10)
    hess = scipy.sparse.block_diag([_banded(10, 1, 1), np.ones((1, 1))]).toarray() != 0
    with fw.x64():
        got = minimize(fun, x0, jac="autodiff", method="Newton-CG", hess_sparsity=hess)
        want = minimize(fun, x0, jac="autodiff", method="Newton-CG")
    np.testing.assert_allclose(fw.to_numpy(got.x["x"]), fw.to_numpy(want.x["x"]), atol=1e-6)
    assert got.sparsity == {
        "hess": {"colors": 3, "mode": "forward", "nnz": 29, "shape": (11, 11)},
        "constraints": [],
    }


@pytest.mark.parametrize("name", AD)
def test_least_squares_sparse_equals_dense(name: str) -> None:
    n = 15
    fw = get_framework(name)
    const, sin, _ = _ops(name)
    data = const(np.sin(np.linspace(0, 3, n)))

    def residuals(d: Any) -> Any:
        u = d["u"]
        fit = u - data
        if name == "tensorflow":
            import tensorflow as tf

            return tf.concat([fit, 2.0 * (u[1:] - u[:-1]) ** 2, sin(d["k"]) * u[:1]], 0)
        if name == "jax":
            import jax.numpy as jnp

            return jnp.concatenate([fit, 2.0 * (u[1:] - u[:-1]) ** 2, sin(d["k"]) * u[:1]])
        import torch

        return torch.cat([fit, 2.0 * (u[1:] - u[:-1]) ** 2, sin(d["k"]) * u[:1]])

    pattern = {
        "u": np.vstack(
            [
                np.eye(n, dtype=bool),
                np.eye(n - 1, n, dtype=bool) | np.eye(n - 1, n, k=1, dtype=bool),
                np.eye(1, n, dtype=bool),
            ]
        ),
        "k": scipy.sparse.csr_array(np.eye(2 * n, 1, k=-(2 * n - 1)).astype(bool)),
    }
    with fw.x64():
        x0 = {"u": fw.tensor(np.zeros(n)), "k": fw.tensor(np.array([1.0]))}
        got = least_squares(residuals, x0, jac_sparsity=pattern, check_sparsity=True)
        want = least_squares(residuals, x0)
    assert isinstance(got.jac, scipy.sparse.csr_array)
    np.testing.assert_allclose(got.cost, want.cost, rtol=1e-6)
    np.testing.assert_allclose(fw.to_numpy(got.x["u"]), fw.to_numpy(want.x["u"]), atol=1e-5)
    assert got.sparsity["jac"]["colors"] == 2 and got.sparsity["jac"]["shape"] == (2 * n, n + 1)


# --- the check and bad input --------------------------------------------------------------------


@pytest.mark.parametrize("name", JAX_TORCH)
def test_check_names_constraint_key_and_entry(name: str) -> None:
    fw, x0, fun, (steps, jac) = _chain(name, 6)
    missing = {"x": jac["x"].copy(), "s": jac["s"]}
    missing["x"][2, 3] = False
    cons = [
        NonlinearConstraint(steps, -np.inf, 0.0, jac_sparsity=jac),
        NonlinearConstraint(steps, -np.inf, 0.0, jac_sparsity=missing),
    ]
    with fw.x64():
        x1 = {"x": fw.tensor(np.arange(6.0) ** 2), "s": x0["s"]}
        with pytest.raises(
            ValueError, match=r"constraints\[1\]: jac_sparsity misses a nonzero"
        ) as e:
            minimize(
                fun,
                x1,
                jac="autodiff",
                method="trust-constr",
                constraints=cons,
                check_sparsity=True,
            )
        assert "output 2 with" in str(e.value) and "x0['x'][3]" in str(e.value)
        # without the check the run goes on: the pattern is the user's promise
        minimize(
            fun, x1, jac="autodiff", method="trust-constr", constraints=cons, options={"maxiter": 3}
        )
        band = _banded(6, 1, 1)
        band[0, 1] = band[1, 0] = False
        with pytest.raises(
            ValueError, match=r"hess_sparsity misses .*\(x0\['x'\]\[0\], x0\['x'\]\[1\]\)"
        ):
            minimize(
                fun,
                x1,
                jac="autodiff",
                method="trust-constr",
                check_sparsity=True,
                hess_sparsity={"x": {"x": band}, "s": {"s": np.ones((), bool)}},
            )


def _layout() -> Any:
    return make_layout({"a": np.zeros((2, 3)), "b": np.zeros(4)}, get_backend("numpy"))


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        (
            np.ones((3, 9), dtype=bool),
            ValueError,
            r"c.jac_sparsity has shape \(3, 9\); expected \(m, 10\)",
        ),
        (
            {"w": np.ones((3, 4), dtype=bool)},
            ValueError,
            r"c.jac_sparsity has key 'w', which is not a key of x0",
        ),
        (
            {"b": np.ones((3, 5), dtype=bool)},
            ValueError,
            r"c.jac_sparsity\['b'\] has shape \(3, 5\); expected \(\*out_shape, \*\(4,\)\)",
        ),
        ({"a": np.ones((5, 3, 2), dtype=bool)}, ValueError, r"c.jac_sparsity\['a'\] has shape"),
        (
            {"a": np.ones((3, 2, 3), dtype=bool), "b": np.ones((2, 4), dtype=bool)},
            ValueError,
            r"c.jac_sparsity\['b'\] covers 2 output value\(s\), but other keys cover 3",
        ),
        (
            {"b": scipy.sparse.csr_array((3, 5))},
            ValueError,
            r"c.jac_sparsity\['b'\] has shape \(3, 5\); expected \(m, 4\)",
        ),
        (
            np.ones((3, 10)),
            TypeError,
            r"c.jac_sparsity must be a bool array or a scipy.sparse matrix; got an array of "
            r"dtype float64",
        ),
        ({}, ValueError, r"c.jac_sparsity is empty"),
        ("auto", TypeError, r"automatic detection is not supported"),
    ],
    ids=[
        "flat-columns",
        "unknown-key",
        "key-shape",
        "key-trailing",
        "rows-differ",
        "sparse-key",
        "not-bool",
        "empty",
        "auto",
    ],
)
def test_bad_patterns_name_the_key(spec: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        jacobian_pattern(spec, _layout(), "c.jac_sparsity")


@pytest.mark.parametrize("name", JAX_TORCH)
def test_bad_input_through_the_solvers(name: str) -> None:
    fw, x0, fun, (steps, jac) = _chain(name, 5)
    kw: dict[str, Any] = {"jac": "autodiff", "method": "trust-constr"}
    with fw.x64():
        bad = {"x": jac["x"], "t": np.ones(4, dtype=bool)}
        with pytest.raises(ValueError, match=r"constraints.jac_sparsity has key 't'"):
            minimize(fun, x0, constraints=NonlinearConstraint(steps, -1, 0, jac_sparsity=bad), **kw)
        short = {"x": jac["x"][:3], "s": jac["s"][:3]}
        with pytest.raises(
            ValueError, match=r"constraints returned 4 value\(s\), but its jac_sparsity has 3 row"
        ):
            minimize(
                fun, x0, constraints=NonlinearConstraint(steps, -1, 0, jac_sparsity=short), **kw
            )
        with pytest.raises(
            ValueError, match=r"constraints\[0\]: jac_sparsity computes the Jacobian by autodiff"
        ):
            minimize(
                fun,
                x0,
                constraints=[NonlinearConstraint(steps, -1, 0, jac="2-point", jac_sparsity=jac)],
                **kw,
            )
        with pytest.raises(
            ValueError, match=r"hess_sparsity has shape \(3, 3\); expected \(6, 6\)"
        ):
            minimize(fun, x0, hess_sparsity=np.eye(3, dtype=bool), **kw)
        with pytest.raises(
            ValueError, match=r"hess_sparsity\['x'\]\['s'\] has shape \(5, 2\); expected \(5,\)"
        ):
            minimize(fun, x0, hess_sparsity={"x": {"s": np.ones((5, 2), bool)}}, **kw)
        with pytest.raises(ValueError, match="hess_sparsity needs a method that takes a sparse"):
            minimize(
                fun, x0, jac="autodiff", method="L-BFGS-B", hess_sparsity=np.eye(6, dtype=bool)
            )
        with pytest.raises(ValueError, match="pass jac='autodiff'"):
            minimize(
                lambda d: (fun(d), None),
                x0,
                method="trust-constr",
                hess_sparsity=np.eye(6, dtype=bool),
            )


def test_numpy_has_no_sparse_autodiff() -> None:
    x0 = {"x": np.zeros(3)}
    con = NonlinearConstraint(lambda d: d["x"] ** 2, 0, 1, jac_sparsity=np.eye(3, dtype=bool))
    with pytest.raises(
        ValueError,
        match=r"constraints: jac_sparsity computes sparse derivatives by automatic "
        r"differentiation, and x0 holds numpy",
    ):
        minimize(
            lambda d: (float(d["x"].sum()), {"x": np.ones(3)}),
            x0,
            method="trust-constr",
            constraints=con,
        )


@pytest.mark.parametrize("name", JAX_TORCH)
def test_slsqp_gets_dense_matrices(name: str) -> None:
    fw, x0, fun, (steps, jac) = _chain(name, 6)
    with fw.x64():
        con = {"type": "ineq", "fun": lambda d: -steps(d), "jac_sparsity": jac}
        got = minimize(fun, x0, jac="autodiff", method="SLSQP", constraints=con)
        want = minimize(
            fun,
            x0,
            jac="autodiff",
            method="SLSQP",
            constraints={"type": "ineq", "fun": lambda d: -steps(d)},
        )
    np.testing.assert_allclose(fw.to_numpy(got.x["x"]), fw.to_numpy(want.x["x"]), atol=1e-6)
    assert got.sparsity["constraints"][0]["jac"]["colors"] == 3  # s is in every row


def test_check_names_the_output_index_and_entry() -> None:
    lay = make_layout({"v": np.zeros(3), "w": np.zeros((2, 2))}, get_backend("numpy"))
    full = np.zeros((6, 7))
    full[4, 5] = 2.5  # output (1, 1), x0['w'][1, 0]

    class Dense:  # products of the linear map ``full``, by hand
        fun_calls = 0

        def jvps(self, x: np.ndarray, seeds: np.ndarray) -> np.ndarray:
            return full @ seeds

    spec = {"w": np.zeros((2, 3, 2, 2), dtype=bool)}
    spec["w"][0, 0, 0, 0] = True
    pattern, out_shape = jacobian_pattern(spec, lay, "constraints[2].jac_sparsity")
    jac = SparseDerivative(
        "jac", pattern, Dense(), "constraints[2]", layout=lay, out_shape=out_shape, mode="forward"
    )
    with pytest.raises(
        ValueError, match=r"output 4 \(index \(1, 1\)\) with respect to x0\['w'\]\[1, 0\] is 2.5"
    ):
        jac.check(np.zeros(7))


def test_tensorflow_compiled_products() -> None:
    """``tf.function`` products (vectorized_map, tape Jacobians); the eager loops are in
    test_decompressed_equals_dense."""
    pytest.importorskip("tensorflow")
    pattern = _banded(9, 1, 2)[:7]
    x0, c, args = _problem("tensorflow", pattern, 5)
    be = get_backend("tensorflow")
    lay = make_layout(x0, be)
    codec = be.make_codec(lay)
    prods = be.sparse_products(lay, codec, c, args, jit=True)
    dense = be.vector_ad(lay, codec, c, args, jit=False)
    x, v = np.linspace(-1, 1, lay.n), np.linspace(1, 2, 7)
    p = scipy.sparse.csr_array(pattern)
    for mode in ("forward", "reverse"):
        jac = SparseDerivative("jac", p, prods, "c", layout=lay, mode=mode)
        np.testing.assert_allclose(jac.matrix(x).toarray(), dense.jacobian(x), atol=1e-12)
    hess = SparseDerivative("vhess", lagrangian_pattern(p), prods, "c", layout=lay).matrix(x, v)
    want = np.stack([dense.vhp(x, v, e) for e in np.eye(lay.n)], axis=1)
    np.testing.assert_allclose(hess.toarray(), want, atol=1e-10)
