"""Nested parameters (pytrees): Mappings, lists, tuples and namedtuples of tensors, any depth.

Random trees (hypothesis) in every framework: ``fun``, the callback, ``res.x`` and ``res.jac``
see x0's nesting, container types and key order; gradients are matched by path (they come back
with every Mapping's keys reversed); partial nested bounds, with scalars at inner nodes, bind
exactly the leaves below them.
"""

from __future__ import annotations

import math
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dict_minimize import minimize
from tests.conftest import Framework, derandomized

Pair = namedtuple("Pair", "left right")
TREES = derandomized("DICT_MINIMIZE_NESTED_EXAMPLES", 25)
KEYS = st.text(alphabet="abcxyz_0", min_size=1, max_size=3)


class Leaf:
    """A leaf of a tree of shapes (a plain tuple would read as a container)."""

    def __init__(self, shape: tuple[int, ...] | None) -> None:
        self.shape = shape  # None: a Python float leaf

    def __repr__(self) -> str:
        return f"Leaf({self.shape})"


SHAPES = st.sampled_from([(), (1,), (2,), (2, 3)]).map(Leaf)


def _trees() -> st.SearchStrategy[Any]:
    """Trees of :class:`Leaf` shapes."""
    leaf = st.one_of(SHAPES, st.just(Leaf(None)))

    def node(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.dictionaries(KEYS, children, min_size=1, max_size=3),
            st.dictionaries(KEYS, children, min_size=1, max_size=3).map(OrderedDict),
            st.lists(children, min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=3).map(tuple),
            st.tuples(children, children).map(lambda t: Pair(*t)),
        )

    # the root is a dict whose values may be leaves or subtrees
    trees = st.dictionaries(KEYS, st.recursive(leaf, node, max_leaves=6), min_size=1, max_size=3)
    # at least one tensor: with float leaves alone the framework is NumPy
    return trees.filter(lambda t: any(leaf.shape is not None for leaf in _leaves(t)))


def _map(tree: Any, fn: Callable[[Any, int], Any], counter: list[int] | None = None) -> Any:
    """``tree`` with every leaf replaced by ``fn(leaf, index)`` (leaves numbered in order)."""
    counter = [0] if counter is None else counter
    if isinstance(tree, Mapping):
        return type(tree)((k, _map(v, fn, counter)) for k, v in tree.items())
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_map(v, fn, counter) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map(v, fn, counter) for v in tree)
    counter[0] += 1
    return fn(tree, counter[0] - 1)


def _leaves(tree: Any) -> list[Any]:
    out: list[Any] = []
    _map(tree, lambda leaf, _: out.append(leaf))
    return out


def _reversed_keys(tree: Any) -> Any:
    """The same tree with every Mapping's keys in reverse order (plain dicts)."""
    if isinstance(tree, Mapping):
        return {k: _reversed_keys(tree[k]) for k in reversed(list(tree))}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_reversed_keys(v) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(_reversed_keys(v) for v in tree)
    return tree


def _structure(tree: Any) -> Any:
    """Container types and key order, with each leaf as its shape (floats: 'float')."""
    return _map(tree, lambda leaf, _: "float" if isinstance(leaf, float) else tuple(np.shape(leaf)))


def _same_structure(a: Any, b: Any) -> bool:
    """``a`` has ``b``'s container types and key order (``b``: x0, leaves are not compared)."""
    if not isinstance(b, (Mapping, list, tuple)):
        return not isinstance(a, (Mapping, list, tuple))
    if type(a) is not type(b):
        return False
    if isinstance(a, Mapping):
        return list(a) == list(b) and all(_same_structure(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_structure(x, y) for x, y in zip(a, b, strict=True))
    return True


def _problem(fw: Framework, shapes: Any) -> tuple[Any, list[np.ndarray], Callable]:
    """x0 from a tree of shapes, per-leaf targets, and fun = sum |leaf - target|^2 (with grad)."""
    rng = np.random.default_rng(0)
    x0 = _map(
        shapes,
        lambda s, _: 0.5 if s.shape is None else fw.tensor(rng.normal(size=s.shape), "float64"),
    )
    targets = [rng.normal(size=s.shape or ()) for s in _leaves(shapes)]
    seen: list[Any] = []

    def fun(d: Any) -> tuple[float, Any]:
        seen.append(d)
        values = [fw.to_numpy(leaf) for leaf in _leaves(d)]
        f = float(sum(np.sum((v - t) ** 2) for v, t in zip(values, targets, strict=True)))
        grad = _map(d, lambda leaf, i: fw.tensor(2 * (values[i] - targets[i]), "float64"))
        return f, _reversed_keys(grad)

    fun.seen = seen  # type: ignore[attr-defined]
    return x0, targets, fun


def _expected_structure(x0: Any) -> Any:
    """What fun and the result hold: a Python float leaf comes back as a 0-d tensor."""
    return _map(x0, lambda leaf, _: () if isinstance(leaf, float) else tuple(np.shape(leaf)))


@TREES
@given(shapes=_trees())
def test_random_trees_round_trip(fw: Framework, shapes: Any) -> None:
    with fw.x64():
        x0, targets, fun = _problem(fw, shapes)
        before = _structure(x0)
        calls: list[Any] = []
        res = minimize(fun, x0, method="L-BFGS-B", callback=calls.append)
        assert _structure(x0) == before  # x0 untouched
        want = _expected_structure(x0)
        for d in [*fun.seen, *calls, res.x, res.jac]:
            assert _same_structure(d, x0) and _structure(d) == want
            assert all(fw.type_check(leaf) for leaf in _leaves(d))
        assert res.success, res.message
        for leaf, t in zip(_leaves(res.x), targets, strict=True):
            np.testing.assert_allclose(fw.to_numpy(leaf), t, atol=1e-5)


@TREES
@given(shapes=_trees(), data=st.data())
def test_nested_partial_bounds(fw: Framework, shapes: Any, data: st.DataObject) -> None:
    """A scalar at one node (inner or leaf) bounds every leaf below it, and only those."""
    with fw.x64():
        x0, targets, fun = _problem(fw, shapes)
        # choose a node by its path: walk down a random number of levels
        path: list[Any] = []
        node: Any = x0
        while isinstance(node, (Mapping, list, tuple)) and data.draw(st.booleans()):
            key = data.draw(
                st.sampled_from(list(node) if isinstance(node, Mapping) else list(range(len(node))))
            )
            path.append(key)
            node = node[key]
        if not path:
            key = data.draw(st.sampled_from(list(x0)))
            path, node = [key], x0[key]
        numbered: Any = _map(x0, lambda _, i: i)  # leaf indices, to find the ones below
        for key in path:
            numbered = numbered[key]
        below = set(_leaves(numbered))
        bound = 10.0  # above every target: the bounded leaves end on it

        def nest(i: int, container: Any) -> Any:
            if i == len(path):
                return bound
            sub = nest(i + 1, container[path[i]])
            if isinstance(container, Mapping):
                return {path[i]: sub}
            out: list[Any] = [None] * len(container)
            out[path[i]] = sub
            return type(container)(*out) if hasattr(container, "_fields") else type(container)(out)

        lb = nest(0, x0)
        res = minimize(fun, x0, method="L-BFGS-B", lb_dict=lb)
        assert res.success, res.message
        for i, (leaf, t) in enumerate(zip(_leaves(res.x), targets, strict=True)):
            expected = np.full(np.shape(t), bound) if i in below else t
            np.testing.assert_allclose(fw.to_numpy(leaf), expected, atol=1e-5)


def test_errors_name_the_path(fw: Framework) -> None:
    with fw.x64():
        x0 = {"params": {"Dense_0": {"kernel": fw.tensor(np.zeros((2, 2)), "float64")}}}

        def wrong(d: Any) -> Any:
            return 0.0, {"params": {"Dense_0": {"bias": d["params"]["Dense_0"]["kernel"]}}}

        with pytest.raises(ValueError, match=r"the gradient\['params'\]\['Dense_0'\] is missing"):
            minimize(wrong, x0)
        with pytest.raises(ValueError, match=r"lb_dict\['params'\] has key\(s\) \['Dense_1'\]"):
            minimize(wrong, x0, lb_dict={"params": {"Dense_1": 0.0}})
        bad_shape = {"params": {"Dense_0": {"kernel": np.zeros(3)}}}
        with pytest.raises(ValueError, match=r"x0\['params'\]\['Dense_0'\]\['kernel'\]"):
            minimize(wrong, x0, lb_dict=bad_shape)


def test_float_leaves_are_float64_tensors() -> None:
    """SciPy users write {"a": 0.0}: a float64 0-d array (NumPy when nothing else says)."""
    res = minimize(lambda d: ((d["a"] - 2.0) ** 2, {"a": 2 * (d["a"] - 2.0)}), {"a": 0.0})
    assert isinstance(res.x["a"], np.ndarray) and res.x["a"].dtype == np.float64
    assert res.x["a"].shape == () and abs(float(res.x["a"]) - 2.0) < 1e-6


def test_constraints_see_the_nesting() -> None:
    """HS71 with its variables in a nested dict: constraint functions get the nesting, and a
    LinearConstraint's per-leaf blocks are given by path (partial)."""
    torch = pytest.importorskip("torch")
    from dict_minimize import LinearConstraint, NonlinearConstraint

    f64 = torch.float64
    x0 = {
        "a": {"x1": torch.tensor(1.0, dtype=f64)},
        "b": [torch.tensor([5.0, 5.0], dtype=f64), torch.tensor(1.0, dtype=f64)],
    }
    seen: list[Any] = []

    def parts(d: Any) -> tuple[Any, Any, Any]:
        seen.append(d)
        return d["a"]["x1"], d["b"][0], d["b"][1]

    def objective(d: Any) -> Any:
        x1, x23, x4 = parts(d)
        return x1 * x4 * (x1 + x23.sum()) + x23[1]

    def product(d: Any) -> Any:
        x1, x23, x4 = parts(d)
        return x1 * x23.prod() * x4 - 25.0

    def sphere(d: Any) -> Any:
        x1, x23, x4 = parts(d)
        return x1**2 + (x23**2).sum() + x4**2 - 40.0

    res = minimize(
        objective,
        x0,
        jac="autodiff",
        method="SLSQP",
        constraints=[
            NonlinearConstraint(product, 0.0, math.inf),
            NonlinearConstraint(sphere, 0.0, 0.0),
            # x1 + x4 <= 6, by path, partial (x23 has no coefficients)
            LinearConstraint(
                {"a": {"x1": np.ones((1,))}, "b": [None, np.ones((1,))]}, -math.inf, 6.0
            ),
        ],
        lb_dict={"a": 1.0, "b": 1.0},
        ub_dict={"a": 5.0, "b": 5.0},
    )
    assert res.success, res.message
    assert all(isinstance(d["b"], list) and set(d["a"]) == {"x1"} for d in seen)
    x = [float(res.x["a"]["x1"]), *res.x["b"][0].tolist(), float(res.x["b"][1])]
    np.testing.assert_allclose(x, [1.0, 4.742999, 3.821151, 1.379408], atol=1e-4)
    assert res.fun == pytest.approx(17.0140173, abs=1e-5)
