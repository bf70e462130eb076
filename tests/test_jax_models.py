"""JAX model parameters straight into ``minimize``: Flax Linen, Flax NNX, Equinox, any pytree.

Registered JAX pytree nodes are nodes of the nested x0 (recognised only once JAX is imported):
Flax Linen variables (nested dicts), an ``nnx.State`` of ``nnx.Param`` variables, an Equinox
module from ``eqx.partition`` (``None`` where its non-array fields were), ``flax.struct``
dataclasses and ``register_pytree_node`` classes. Each fit is compared with plain SciPy on the
same flat problem, flattened by ``jax.flatten_util.ravel_pytree`` and permuted into our leaf
order (x0's own order: Mappings by insertion, pytree nodes as JAX flattens them): the same
iterates, so the same ``nit`` and ``nfev`` and x to 1e-10. All in float64, enabled per test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st

from dict_minimize import minimize
from tests.conftest import derandomized

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
tu = jax.tree_util

EXAMPLES = derandomized("DICT_MINIMIZE_JAX_TREE_EXAMPLES", 10)


@pytest.fixture(autouse=True)
def x64() -> Iterator[None]:
    """float64 for the test's duration only (as the ``fw`` fixture's JAX x64)."""
    with jax.enable_x64(True):
        yield


# --- custom pytree nodes ----------------------------------------------------------------------


@tu.register_pytree_node_class
class Affine:
    """A ``register_pytree_node_class`` node without keys (JAX numbers its children): w, b, and
    a static name (aux data)."""

    def __init__(self, w: Any, b: Any, name: str = "affine") -> None:
        self.w, self.b, self.name = w, b, name

    def tree_flatten(self) -> tuple[tuple[Any, Any], str]:
        return (self.w, self.b), self.name

    @classmethod
    def tree_unflatten(cls, name: str, children: Any) -> Affine:
        return cls(*children, name=name)


@tu.register_pytree_with_keys_class
class Box:
    """A node with attribute keys (``.c0``, ``.c1``, ...) and a static tag; children may be
    None (empty subtrees)."""

    def __init__(self, children: tuple, tag: str = "box") -> None:
        self.children, self.tag = tuple(children), tag

    def tree_flatten_with_keys(self) -> tuple[tuple, str]:
        return tuple((tu.GetAttrKey(f"c{i}"), c) for i, c in enumerate(self.children)), self.tag

    def tree_flatten(self) -> tuple[tuple, str]:
        return self.children, self.tag

    @classmethod
    def tree_unflatten(cls, tag: str, children: Any) -> Box:
        return cls(tuple(children), tag)

    def __repr__(self) -> str:
        return f"Box({self.children!r}, {self.tag!r})"


# --- the reference: plain SciPy on the flat problem, in our leaf order -------------------------


def our_leaves(tree: Any) -> list[Any]:
    """x0's leaves in our order: dicts by insertion (JAX sorts their keys), lists and tuples
    by position, other pytree nodes (nnx.State too) as JAX flattens them one level; None has
    none."""
    if tree is None:
        return []
    if type(tree) is dict:
        return [leaf for v in tree.values() for leaf in our_leaves(v)]
    if isinstance(tree, (list, tuple)):
        return [leaf for v in tree for leaf in our_leaves(v)]
    if isinstance(tree, (jax.Array, np.ndarray)):
        return [tree]
    children = tu.tree_flatten(tree, is_leaf=lambda c: c is not tree)[0]
    return [leaf for c in children for leaf in our_leaves(c)]


def flat(tree: Any) -> np.ndarray:
    """The leaves of ``tree`` in our order, as one float64 vector."""
    return np.concatenate([np.asarray(leaf, np.float64).ravel() for leaf in our_leaves(tree)])


def positions(x0: Any) -> Any:
    """x0 with every leaf replaced by its positions in our flat vector (same shapes)."""
    leaves = our_leaves(x0)
    assert len({id(leaf) for leaf in leaves}) == len(leaves)  # leaves are told apart by id
    start, offset = {}, 0
    for leaf in leaves:
        start[id(leaf)] = offset
        offset += leaf.size
    return jax.tree.map(
        lambda a: np.arange(start[id(a)], start[id(a)] + a.size).reshape(a.shape), x0
    )


def reference(
    loss: Callable, x0: Any, lb: list[tuple[Any, float]] | None = None, **options: Any
) -> scipy.optimize.OptimizeResult:
    """``loss`` of x0's pytree, minimized by SciPy's L-BFGS-B on the vector of our leaf order:
    ``ravel_pytree`` gives JAX's order, ``perm`` maps it to ours. ``lb``: (positions, bound)
    pairs for the bounded leaves (positions from :func:`positions`)."""
    from jax.flatten_util import ravel_pytree

    perm, _ = ravel_pytree(positions(x0))
    perm = np.asarray(perm).astype(np.int64)
    _, unravel = ravel_pytree(x0)
    value_and_grad = jax.jit(jax.value_and_grad(lambda z: loss(unravel(z[perm]))))

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = value_and_grad(jnp.asarray(z))
        return float(v), np.asarray(g, np.float64)

    z0 = flat(x0)
    bounds = None
    if lb:
        lower = np.full(z0.size, -np.inf)
        for where, value in lb:
            lower[np.asarray(where).ravel()] = value
        bounds = scipy.optimize.Bounds(lower, np.full(z0.size, np.inf))
    return scipy.optimize.minimize(
        fun, z0, jac=True, method="L-BFGS-B", bounds=bounds, options=options
    )


def assert_same_run(res: Any, ref: Any) -> None:
    """The same iterates: the same counts and x, jac to 1e-10 (not to the last bit)."""
    assert (res.nit, res.nfev, res.success) == (ref.nit, ref.nfev, ref.success)
    np.testing.assert_allclose(flat(res.x), ref.x, rtol=0, atol=1e-10)
    np.testing.assert_allclose(flat(res.jac), ref.jac, rtol=0, atol=1e-10)
    assert res.fun == pytest.approx(ref.fun, rel=1e-10, abs=1e-14)


def assert_close_runs(pair: Any, auto: Any) -> None:
    """JAX's gradient computed eagerly (jac=True) and compiled (autodiff) differ in the last
    bits, which a few dozen L-BFGS-B iterations amplify to ~1e-10: close, not identical."""
    assert pair.nit == auto.nit and abs(pair.nfev - auto.nfev) <= 2
    np.testing.assert_allclose(flat(pair.x), flat(auto.x), rtol=0, atol=1e-6)
    assert pair.fun == pytest.approx(auto.fun, rel=1e-8)


def regression_data(n: int = 48, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    return jnp.asarray(x), jnp.asarray(np.sin(3.0 * x[:, :1]) + 0.5 * x[:, 1:] ** 2)


OPTIONS = {"maxiter": 60}  # enough iterates to compare, few enough to stay fast


# --- Equinox -----------------------------------------------------------------------------------


def equinox_problem() -> tuple[Any, Any, Any, Callable]:
    eqx = pytest.importorskip("equinox")
    x, y = regression_data()
    mlp = eqx.nn.MLP(2, 1, 6, 2, activation=jnp.tanh, key=jax.random.PRNGKey(0), dtype=float)
    params, static = eqx.partition(mlp, eqx.is_inexact_array)

    def loss(p: Any) -> Any:
        return jnp.mean((jax.vmap(eqx.combine(p, static))(x) - y) ** 2)

    return eqx, params, static, loss


def test_equinox_partition_matches_flat_scipy() -> None:
    eqx, params, static, loss = equinox_problem()
    assert params.activation is None  # eqx.partition leaves None where the function was
    seen: list[Any] = []
    res = minimize(
        loss, params, jac="autodiff", method="L-BFGS-B", options=OPTIONS, callback=seen.append
    )
    assert_same_run(res, reference(loss, params, **OPTIONS))
    for out in (res.x, res.jac, *seen):  # the same class, None kept, static fields kept
        assert type(out) is type(params) and out.activation is None
        assert (out.in_size, out.width_size, out.depth) == (2, 6, 2)
        assert tu.tree_structure(out) == tu.tree_structure(params)
    model = eqx.combine(res.x, static)
    assert float(
        jnp.mean((jax.vmap(model)(regression_data()[0]) - regression_data()[1]) ** 2)
    ) == pytest.approx(res.fun)


def test_equinox_bounds_by_partition_shape_and_by_scalar_at_a_node() -> None:
    eqx, params, _, loss = equinox_problem()
    unbounded = jax.tree.map(lambda _: None, params)  # the same Module, None at every leaf

    def bound(where: Callable, value: float) -> Any:
        return eqx.tree_at(where, unbounded, value, is_leaf=lambda v: v is None)

    pos = positions(params)
    # an eqx.partition-shaped bound: one layer's bias >= 0.05
    lb = bound(lambda m: m.layers[1].bias, 0.05)
    res = minimize(loss, params, jac="autodiff", method="L-BFGS-B", lb_dict=lb, options=OPTIONS)
    assert_same_run(res, reference(loss, params, [(pos.layers[1].bias, 0.05)], **OPTIONS))
    assert float(res.x.layers[1].bias.min()) >= 0.05
    assert np.isclose(np.asarray(res.x.layers[1].bias), 0.05).any()  # the bound is active
    # a scalar at a pytree node bounds every leaf below it: layers[0] (weight and bias)
    lb = bound(lambda m: m.layers[0], 0.0)
    res = minimize(loss, params, jac="autodiff", method="L-BFGS-B", lb_dict=lb, options=OPTIONS)
    below = [(pos.layers[0].weight, 0.0), (pos.layers[0].bias, 0.0)]
    assert_same_run(res, reference(loss, params, below, **OPTIONS))
    assert float(res.x.layers[0].weight.min()) >= 0.0


def test_equinox_gradients_matched_by_path() -> None:
    """jac=True with JAX's own gradient (an MLP, None where x0 has None) runs as autodiff."""
    _, params, _, loss = equinox_problem()
    auto = minimize(loss, params, jac="autodiff", method="L-BFGS-B", options=OPTIONS)
    pair = minimize(jax.value_and_grad(loss), params, method="L-BFGS-B", options=OPTIONS)
    assert_close_runs(pair, auto)
    # inside a dict whose gradient lists its keys in another order
    x0 = {"model": params, "scale": jnp.ones(())}

    def fun(d: Any) -> tuple[Any, Any]:
        v, g = jax.value_and_grad(lambda p: loss(p["model"]) * p["scale"] ** 2)(d)
        return v, {"scale": g["scale"], "model": g["model"]}

    res = minimize(fun, x0, method="L-BFGS-B", lb_dict={"scale": 1.0}, options=OPTIONS)
    assert res.success or res.nit == OPTIONS["maxiter"]
    assert type(res.x["model"]) is type(params) and float(res.x["scale"]) == 1.0


def test_equinox_errors_name_attribute_paths() -> None:
    eqx, params, static, loss = equinox_problem()
    vg = jax.value_and_grad(loss)

    def corrupt(change: Callable) -> Callable:
        def fun(p: Any) -> tuple[Any, Any]:
            v, g = vg(p)
            return v, change(g)

        return fun

    def at_bias(value: Any) -> Callable:
        return lambda g: eqx.tree_at(lambda m: m.layers[0].bias, g, value)

    with pytest.raises(
        ValueError,
        match=r"gradient for x0\.layers\[0\]\.bias has shape \(3,\), "
        r"expected \(6,\) - the shape of x0\.layers\[0\]\.bias",
    ):
        minimize(corrupt(at_bias(jnp.zeros(3))), params)
    with pytest.raises(TypeError, match=r"gradient for x0\.layers\[0\]\.bias is a NoneType"):
        minimize(
            corrupt(lambda g: eqx.tree_at(lambda m: m.layers[0].bias, g, replace=None)), params
        )
    with pytest.raises(TypeError, match=r"the gradient\.activation must be None, as x0 is"):
        minimize(
            corrupt(
                lambda g: eqx.tree_at(
                    lambda m: m.activation, g, jnp.zeros(()), is_leaf=lambda v: v is None
                )
            ),
            params,
        )
    with pytest.raises(TypeError, match=r"the gradient\.layers\[0\] must be an equinox\.Linear"):
        minimize(corrupt(lambda g: eqx.tree_at(lambda m: m.layers[0], g, {"w": 0})), params)
    with pytest.raises(TypeError, match=r"the gradient must be an equinox\.MLP, like x0"):
        minimize(corrupt(lambda g: {"layers": g.layers}), params)
    # bounds
    with pytest.raises(TypeError, match=r"lb_dict must be an equinox\.MLP like x0, with None"):
        minimize(loss, params, jac="autodiff", lb_dict=0.0)
    with pytest.raises(TypeError, match=r"lb_dict is a dict; x0 has an equinox\.MLP there"):
        minimize(loss, params, jac="autodiff", lb_dict={"layers": 0.0})
    bad = eqx.tree_at(lambda m: m.layers[0].bias, params, jnp.zeros(2))
    with pytest.raises(
        ValueError,
        match=r"lb_dict\.layers\[0\]\.bias has shape \(2,\), "
        r"expected \(6,\) \(the shape of x0\.layers\[0\]\.bias\)",
    ):
        minimize(loss, params, jac="autodiff", lb_dict=bad)
    unbounded = jax.tree.map(lambda _: None, params)
    on_none = eqx.tree_at(lambda m: m.activation, unbounded, 0.0, is_leaf=lambda v: v is None)
    with pytest.raises(ValueError, match=r"lb_dict\.activation is a float, where x0 has None"):
        minimize(loss, params, jac="autodiff", lb_dict=on_none)
    # x0: a model that was not partitioned, one with no arrays, the drop-in API
    model = eqx.combine(params, static)
    with pytest.raises(TypeError, match=r"x0\.activation is a .*eqx\.partition\(model"):
        minimize(loss, model, jac="autodiff")
    with pytest.raises(ValueError, match=r"x0 has no leaves \(only None and empty subtrees\)"):
        minimize(loss, unbounded, jac="autodiff")
    from dict_minimize import jax_api

    with pytest.raises(TypeError, match=r"x0 must be a dict"):
        jax_api.minimize(vg, params)
    with pytest.raises(TypeError, match=r"x0_dict\['m'\] is a .*MLP: the drop-in minimize"):
        jax_api.minimize(vg, {"m": params})


# --- Flax Linen --------------------------------------------------------------------------------


def test_flax_linen_variables_match_flat_scipy() -> None:
    nn = pytest.importorskip("flax.linen")
    x, y = regression_data()

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, v: Any) -> Any:
            hidden = jnp.tanh(nn.Dense(6, param_dtype=jnp.float64)(v))
            return nn.Dense(1, param_dtype=jnp.float64)(hidden)

    model = MLP()
    variables = model.init(jax.random.PRNGKey(0), x)
    assert list(variables["params"]["Dense_0"]) == ["kernel", "bias"]  # not JAX's sorted order

    def loss(v: Any) -> Any:
        return jnp.mean((model.apply(v, x) - y) ** 2)

    lb = {"params": {"Dense_0": {"bias": 0.02}}}
    res = minimize(loss, variables, jac="autodiff", method="L-BFGS-B", lb_dict=lb, options=OPTIONS)
    pos = positions(variables)
    assert_same_run(
        res, reference(loss, variables, [(pos["params"]["Dense_0"]["bias"], 0.02)], **OPTIONS)
    )
    assert list(res.x["params"]["Dense_0"]) == ["kernel", "bias"]
    assert float(res.x["params"]["Dense_0"]["bias"].min()) >= 0.02
    assert float(loss(res.x)) == pytest.approx(res.fun)


# --- Flax NNX ----------------------------------------------------------------------------------


def nnx_problem() -> tuple[Any, Any, Any, Callable]:
    nnx = pytest.importorskip("flax.nnx")
    x, y = regression_data()

    class MLP(nnx.Module):
        def __init__(self, rngs: Any) -> None:
            self.hidden = nnx.Linear(2, 6, param_dtype=jnp.float64, rngs=rngs)
            self.out = nnx.Linear(6, 1, param_dtype=jnp.float64, rngs=rngs)

        def __call__(self, v: Any) -> Any:
            return self.out(jnp.tanh(self.hidden(v)))

    graphdef, state = nnx.split(MLP(nnx.Rngs(0)))

    def loss(s: Any) -> Any:
        return jnp.mean((nnx.merge(graphdef, s)(x) - y) ** 2)

    return nnx, graphdef, state, loss


def test_flax_nnx_state_goes_in_directly() -> None:
    """An nnx.State (a Mapping JAX registers) of nnx.Param nodes: no to_pure_dict needed."""
    nnx, graphdef, state, loss = nnx_problem()
    lb = {"hidden": {"bias": 0.01}}  # a scalar at the Param node bounds the array inside it
    res = minimize(loss, state, jac="autodiff", method="L-BFGS-B", lb_dict=lb, options=OPTIONS)
    pos = positions(state)
    assert_same_run(res, reference(loss, state, [(pos["hidden"]["bias"][...], 0.01)], **OPTIONS))
    for out in (res.x, res.jac):
        assert type(out) is nnx.State and type(out["hidden"]["bias"]) is nnx.Param
        assert tu.tree_structure(out) == tu.tree_structure(state)
    model = nnx.merge(graphdef, res.x)
    assert float(model.hidden.bias[...].min()) >= 0.01
    x, y = regression_data()
    assert float(jnp.mean((model(x) - y) ** 2)) == pytest.approx(res.fun)
    # JAX's gradient of the state (State of Params) matched by path: the same run
    pair = minimize(jax.value_and_grad(loss), state, method="L-BFGS-B", lb_dict=lb, options=OPTIONS)
    assert_close_runs(pair, res)


def test_flax_nnx_pure_dict_is_the_same_problem() -> None:
    nnx, _, state, loss = nnx_problem()
    pure = nnx.to_pure_dict(state)

    def pure_loss(d: Any) -> Any:
        s = nnx.State(state)
        nnx.replace_by_pure_dict(s, d)
        return loss(s)

    direct = minimize(loss, state, jac="autodiff", method="L-BFGS-B", options=OPTIONS)
    res = minimize(pure_loss, pure, jac="autodiff", method="L-BFGS-B", options=OPTIONS)
    assert type(res.x) is dict and type(res.x["hidden"]["bias"]) is not nnx.Param
    assert (res.nit, res.nfev) == (direct.nit, direct.nfev)
    np.testing.assert_allclose(flat(res.x), flat(direct.x), rtol=0, atol=1e-10)


def test_flax_nnx_errors_name_the_variable() -> None:
    _, _, state, loss = nnx_problem()

    def fun(s: Any) -> tuple[Any, Any]:
        v, g = jax.value_and_grad(loss)(s)
        g["hidden"]["bias"] = g["hidden"]["bias"][...]  # the array, not the Param
        return v, g

    with pytest.raises(
        TypeError, match=r"the gradient\['hidden'\]\['bias'\] must be a flax\.Param"
    ):
        minimize(fun, state)


# --- flax.struct and register_pytree_node classes ----------------------------------------------


def test_flax_struct_dataclass() -> None:
    struct = pytest.importorskip("flax.struct")

    @struct.dataclass
    class Line:
        slope: Any
        intercept: Any
        name: str = struct.field(pytree_node=False, default="line")

    x, y = jnp.linspace(-1.0, 1.0, 9), 2.0 * jnp.linspace(-1.0, 1.0, 9) - 0.5

    def loss(p: Any) -> Any:
        return jnp.mean((p["line"].slope * x + p["line"].intercept - y) ** 2)

    x0 = {"line": Line(jnp.zeros(()), jnp.zeros(()), name="fit")}
    res = minimize(loss, x0, jac="autodiff", method="L-BFGS-B", ub_dict={"line": 1.5})
    line = res.x["line"]
    assert type(line) is Line and line.name == "fit"
    assert float(line.slope) == pytest.approx(1.5) and float(line.intercept) < 0.0

    def wrong(p: Any) -> tuple[Any, Any]:
        v, g = jax.value_and_grad(loss)(p)
        return v, {"line": g["line"].replace(intercept=jnp.zeros(2))}

    with pytest.raises(ValueError, match=r"gradient for x0\['line'\]\.intercept has shape"):
        minimize(wrong, x0)


def test_register_pytree_node_class() -> None:
    """Children numbered by JAX (``[0]``, ``[1]``); the static name comes back."""
    x = jnp.linspace(-1.0, 1.0, 11)
    y = 0.7 * x + 0.2

    def loss(p: Any) -> Any:
        return jnp.mean((p.w * x + p.b - y) ** 2)

    x0 = Affine(jnp.zeros(()), jnp.zeros(()), name="mine")
    res = minimize(loss, x0, jac="autodiff", method="L-BFGS-B", lb_dict=Affine(None, 0.3))
    assert type(res.x) is Affine and res.x.name == "mine" and type(res.jac) is Affine
    assert float(res.x.b) == pytest.approx(0.3) and float(res.x.w) == pytest.approx(0.7, abs=1e-5)

    def wrong(p: Any) -> tuple[Any, Any]:
        return loss(p), Affine(jnp.zeros(()), jnp.zeros(3))

    with pytest.raises(ValueError, match=r"gradient for x0\[1\] has shape \(3,\)"):
        minimize(wrong, x0)


def test_custom_nodes_in_numpy_and_torch() -> None:
    """The tree is framework-free: a pytree node holding NumPy arrays or torch tensors works
    with those backends once JAX is imported (jac=True in NumPy, autodiff in PyTorch)."""
    target = np.array([1.0, -2.0])

    def fun(p: Any) -> tuple[float, Any]:
        return float(np.sum((p.w - target) ** 2)), Affine(2 * (p.w - target), 2 * p.b)

    res = minimize(
        fun, Affine(np.zeros(2), np.ones(())), method="L-BFGS-B", lb_dict=Affine(0.0, None)
    )
    assert type(res.x) is Affine and isinstance(res.x.w, np.ndarray)
    np.testing.assert_allclose(res.x.w, [1.0, 0.0], atol=1e-8)
    torch = pytest.importorskip("torch")
    x0 = Box((torch.zeros(2, dtype=torch.float64), None))
    res = minimize(lambda p: ((p.children[0] - 3.0) ** 2).sum(), x0, jac="autodiff")
    assert type(res.x) is Box and res.x.children[1] is None
    np.testing.assert_allclose(res.x.children[0].numpy(), 3.0, atol=1e-6)


def test_none_only_inside_jax_nodes() -> None:
    """None is an empty subtree inside a JAX pytree node (where JAX and eqx.partition put it),
    also deeper in plain containers there; in a plain dict it stays the error it was."""
    x0 = {"a": Box(({"w": jnp.ones(2), "skip": None}, [None, jnp.ones(())], None, ()))}

    def loss(p: Any) -> Any:
        inner = p["a"].children
        return jnp.sum((inner[0]["w"] - 2.0) ** 2) + (inner[1][1] + 1.0) ** 2

    res = minimize(loss, x0, jac="autodiff", method="L-BFGS-B", lb_dict={"a": 0.0})
    box = res.x["a"]
    assert box.children[0]["skip"] is None and box.children[1][0] is None
    assert box.children[2] is None and box.children[3] == ()
    np.testing.assert_allclose(box.children[0]["w"], 2.0, atol=1e-6)
    assert float(box.children[1][1]) == 0.0
    with pytest.raises(TypeError, match=r"x0\['b'\] is a NoneType"):
        minimize(loss, {"a": jnp.ones(()), "b": None}, jac="autodiff")
    with pytest.raises(ValueError, match=r"x0\['b'\] is an empty dict"):
        minimize(loss, {"a": jnp.ones(()), "b": {}}, jac="autodiff")


# --- random trees with custom nodes and None subtrees ------------------------------------------


class Leaf:
    """A leaf of a tree of shapes."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __repr__(self) -> str:
        return f"Leaf({self.shape})"


KEYS = st.text(alphabet="abxyz_", min_size=1, max_size=3)


def _trees() -> st.SearchStrategy[Any]:
    """Trees of Leaf shapes with dicts, lists, tuples and Box nodes; a Box's children may be
    None, and a Box may be empty."""
    leaf = st.sampled_from([(), (1,), (2,), (2, 3)]).map(Leaf)

    def node(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.dictionaries(KEYS, children, min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=3).map(tuple),
            st.tuples(st.lists(st.one_of(children, st.none()), max_size=3), KEYS).map(
                lambda t: Box(tuple(t[0]), t[1])
            ),
        )

    trees = st.dictionaries(KEYS, st.recursive(leaf, node, max_leaves=6), min_size=1, max_size=3)
    return trees.filter(lambda t: len(_leaves(t)) > 0)


def _map(tree: Any, fn: Callable[[Any, int], Any], counter: list[int] | None = None) -> Any:
    """``tree`` with every leaf replaced by ``fn(leaf, index)``, in our leaf order."""
    counter = [0] if counter is None else counter
    if tree is None:
        return None
    if isinstance(tree, Mapping):
        return {k: _map(v, fn, counter) for k, v in tree.items()}
    if isinstance(tree, Box):
        return Box(tuple(_map(v, fn, counter) for v in tree.children), tree.tag)
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map(v, fn, counter) for v in tree)
    counter[0] += 1
    return fn(tree, counter[0] - 1)


def _leaves(tree: Any) -> list[Any]:
    out: list[Any] = []
    _map(tree, lambda leaf, _: out.append(leaf))
    return out


def _reversed_keys(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {k: _reversed_keys(tree[k]) for k in reversed(list(tree))}
    if isinstance(tree, Box):
        return Box(tuple(_reversed_keys(v) for v in tree.children), tree.tag)
    if isinstance(tree, (list, tuple)):
        return type(tree)(_reversed_keys(v) for v in tree)
    return tree


def _structure(tree: Any) -> Any:
    """Types, keys, tags and None positions, with each leaf as its shape."""
    if tree is None:
        return None
    if isinstance(tree, Mapping):
        return ("dict", [(k, _structure(v)) for k, v in tree.items()])
    if isinstance(tree, Box):
        return ("Box", tree.tag, [_structure(v) for v in tree.children])
    if isinstance(tree, (list, tuple)):
        return (type(tree).__name__, [_structure(v) for v in tree])
    return tuple(np.shape(tree))


@EXAMPLES
@given(shapes=_trees(), framework=st.sampled_from(["jax", "numpy"]), data=st.data())
def test_random_trees_with_pytree_nodes_round_trip(
    shapes: Any, framework: str, data: st.DataObject
) -> None:
    """fun, the callback, res.x and res.jac keep x0's structure (Box nodes, their tags, None
    subtrees, key order); the gradient comes back with keys reversed (matched by path); a
    scalar bound at the root binds everything. JAX: autodiff or JAX's own gradient; NumPy:
    a hand-made gradient tree."""
    rng = np.random.default_rng(0)
    xp = jnp if framework == "jax" else np
    x0 = _map(shapes, lambda s, _: xp.asarray(rng.normal(size=s.shape)))
    targets = [rng.normal(size=s.shape) for s in _leaves(shapes)]
    seen: list[Any] = []

    def loss(d: Any) -> Any:
        return sum(xp.sum((v - t) ** 2) for v, t in zip(_leaves(d), targets, strict=True))

    def pair(d: Any) -> tuple[Any, Any]:
        seen.append(d)
        if framework == "jax":
            value, grad = jax.value_and_grad(loss)(d)
        else:
            value = float(loss(d))
            grad = _map(d, lambda v, i: 2 * (v - targets[i]))
        return value, _reversed_keys(grad)

    mode = data.draw(st.sampled_from(["autodiff", "pair"] if framework == "jax" else ["pair"]))
    bounded = data.draw(st.booleans())
    calls: list[Any] = []
    res = minimize(
        pair if mode == "pair" else loss,
        x0,
        jac=True if mode == "pair" else "autodiff",
        method="L-BFGS-B",
        callback=calls.append,
        lb_dict={k: -0.5 for k in x0} if bounded else None,
    )
    want = _structure(x0)
    for d in [*seen, *calls, res.x, res.jac]:
        assert _structure(d) == want
    assert res.success, res.message
    for leaf, t in zip(_leaves(res.x), targets, strict=True):
        np.testing.assert_allclose(
            np.asarray(leaf), np.maximum(t, -0.5) if bounded else t, atol=1e-5
        )


# --- the examples ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "needs"), [("flax_model", "flax"), ("equinox_model", "equinox")])
def test_model_examples_main(name: str, needs: str, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip(needs)
    from tests.test_examples import load_example

    mod = load_example(name)
    assert mod.main(["--size", "48"]) == 0
    out = capsys.readouterr().out
    assert "mean squared error: before" in out and "bias (>= 0): [" in out
    assert "L-BFGS-B: converged in " in out
    fit = mod.fit(48, seed=0)
    assert fit.success and "CONVERGENCE" in fit.message
    assert fit.loss_after < 0.1 * fit.loss_before and (fit.bias >= 0.0).all()
    # stopped short of the limit, and reported so: main fails when the fit does not converge
    assert mod.main(["--size", "48", "--maxiter", "3"]) == 1
    assert "did not converge" in capsys.readouterr().out


def test_importing_dict_minimize_imports_no_framework() -> None:
    """The pytree node kind needs JAX only once JAX is imported by the user."""
    import subprocess
    import sys

    code = (
        "import sys, dict_minimize, numpy as np\n"
        "from dict_minimize import minimize\n"
        "res = minimize(lambda d: (float(d['a'] @ d['a']), {'a': 2 * d['a']}), {'a': np.ones(2)})\n"
        "print(sorted(m for m in ('jax', 'flax', 'equinox', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
