"""PyTorch autodiff for ``jac='autodiff'``: gradients, Hessian products and Jacobians by autograd.

The objective runs once per point: its autograd graph (built with ``create_graph=True`` when
second-order information is wanted) is kept, with its leaves, until SciPy moves to another point,
so Hessian-vector products and the dense Hessian at the point of the last gradient are double
backward passes that do not call the user's function again. A constraint's graph from ``value``
is reused the same way by ``jacobian`` and ``vhp``.

``jit`` is accepted for a uniform signature and ignored: PyTorch runs eagerly (no
``torch.compile``), so ``fun_calls`` counts Python calls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, cast

import numpy as np
import torch

from dict_minimize._structure.layout import Layout, _mapping_factory
from dict_minimize._structure.types import Codec
from dict_minimize.backends._ad import (
    VALUE_AND_GRAD_DOC,
    PointCache,
    as_jit,
    as_vector,
    dict_entries,
    dtype_error,
    scalar_kind_error,
    scalar_shape_error,
    vector_kind_error,
)

_WHERE = "with jac='autodiff'"
_TENSOR = "torch.Tensor"
_CPU = torch.device("cpu")


def _check_scalar(value: Any, where: str) -> torch.Tensor:
    """The objective's value, or a TypeError/ValueError saying what is wrong with it."""
    if not isinstance(value, torch.Tensor):
        raise scalar_kind_error(value, _TENSOR, where)
    if value.dim() != 0:
        raise scalar_shape_error(value.shape, where)
    if not value.is_floating_point():
        raise dtype_error(value.dtype, where)
    return value


def _check_vector(value: Any, where: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise vector_kind_error(value, _TENSOR, where)
    if not value.is_floating_point():
        raise dtype_error(value.dtype, where, what="the constraint function", kind="tensor")
    return value


def _grad(
    outputs: Sequence[torch.Tensor],
    inputs: Sequence[torch.Tensor],
    grad_outputs: Sequence[torch.Tensor] | None = None,
    *,
    create_graph: bool = False,
    batched: bool = False,
) -> list[torch.Tensor | None]:
    """``torch.autograd.grad`` keeping the graph, None for inputs the outputs do not use."""
    out = torch.autograd.grad(
        list(outputs),
        list(inputs),
        grad_outputs=None if grad_outputs is None else list(grad_outputs),
        retain_graph=True,
        create_graph=create_graph,
        allow_unused=True,
        is_grads_batched=batched,
    )
    return list(cast(tuple, out))


def _connected(
    outputs: Sequence[torch.Tensor | None], grad_outputs: Sequence[torch.Tensor]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The outputs that depend on the leaves (they require grad), with their grad_outputs."""
    pairs = [
        (o, g)
        for o, g in zip(outputs, grad_outputs, strict=True)
        if o is not None and o.requires_grad
    ]
    return [o for o, _ in pairs], [g for _, g in pairs]


def _host_columns(parts: Sequence[torch.Tensor], rows: int) -> np.ndarray:
    """``(rows, *shape_j)`` blocks as one float64 ``(rows, sum size_j)`` NumPy matrix.

    Concatenated on the device when the blocks share one (a single transfer), else on the host.
    """
    flats = [p.reshape(rows, -1) for p in parts]
    if len({p.device for p in flats}) == 1:
        return torch.cat(flats, dim=1).to(device=_CPU, dtype=torch.float64).numpy()
    host = [p.to(device=_CPU, dtype=torch.float64) for p in flats]
    return torch.cat(host, dim=1).numpy()


class _Graph(NamedTuple):
    """What one run of the objective left for second-order products at its point."""

    leaves: list[torch.Tensor]
    grads: list[torch.Tensor | None]  # first derivatives, with their own graph


class _ConstraintGraph(NamedTuple):
    leaves: list[torch.Tensor]
    out: torch.Tensor  # the constraint's values, flattened, still in the graph
    # (v, first derivatives of v . c with their graph), for products at the same multipliers
    vgrad: list[tuple[np.ndarray, list[torch.Tensor | None]]]


class _Base:
    def __init__(self, layout: Layout, codec: Codec, fun: Callable, args: tuple, jit: Any):
        as_jit(jit)  # validated, then ignored: PyTorch runs eagerly
        self.layout, self.codec, self.fun, self.args = layout, codec, fun, tuple(args)
        self.n = layout.n
        self.fun_calls = 0

    def _leaves(self, x: np.ndarray, owned: bool = False) -> list[torch.Tensor]:
        return self.codec.unflatten(x, for_objective=True, owned=owned)

    def _parts(self, vec: np.ndarray) -> list[torch.Tensor]:
        """A flat vector as tensors shaped, typed and placed like the leaves."""
        return self.codec.unflatten(vec, for_objective=False)

    def _call(self, leaves: list[torch.Tensor]) -> Any:
        self.fun_calls += 1
        return self.fun(self.layout.build(leaves), *self.args)

    def _flat(self, grads: Sequence[torch.Tensor | None], leaves: Sequence[torch.Tensor]) -> Any:
        parts = [
            torch.zeros_like(x) if g is None else g for g, x in zip(grads, leaves, strict=True)
        ]
        return self.codec.flatten(None, parts)[1]

    def _identity_blocks(self, rows: int) -> list[torch.Tensor]:
        """Rows of the ``(rows, n)`` identity, cut into the entries' shapes, dtypes, devices."""
        blocks = []
        lay = self.layout
        for i, (shape, dtype, device) in enumerate(
            zip(lay.shapes, lay.dtypes, lay.devices, strict=True)
        ):
            a, b = lay.offsets[i], lay.offsets[i + 1]
            block = torch.zeros((rows, b - a), dtype=dtype, device=device)
            block[a:b] = torch.eye(b - a, dtype=dtype, device=device)
            blocks.append(block.reshape((rows, *shape)))
        return blocks

    def _stack(
        self,
        rows: int,
        outputs: Sequence[torch.Tensor],
        grad_outputs: Sequence[torch.Tensor],
        leaves: list[torch.Tensor],
        one_row: Callable[[int], np.ndarray],
    ) -> np.ndarray:
        """``rows`` vector-Jacobian products in one batched backward (a loop if that fails)."""
        try:
            got = _grad(outputs, leaves, grad_outputs, batched=True)
        except (RuntimeError, NotImplementedError):  # an operation without a batching rule
            return np.stack([one_row(i) for i in range(rows)]) if rows else np.zeros((0, self.n))
        parts = [
            torch.zeros((rows, *x.shape), dtype=x.dtype, device=x.device) if g is None else g
            for g, x in zip(got, leaves, strict=True)
        ]
        return _host_columns(parts, rows)


class TorchScalarAD(_Base):
    """:class:`~dict_minimize._structure.types.ScalarAD` for PyTorch; see :func:`scalar_ad`."""

    def __init__(
        self,
        layout: Layout,
        codec: Codec,
        fun: Callable,
        args: tuple,
        *,
        jit: Any,
        second_order: bool,
    ) -> None:
        super().__init__(layout, codec, fun, args, jit)
        self.second_order = bool(second_order)
        self._cache: PointCache[_Graph] = PointCache()

    def _run(
        self, x: np.ndarray, create_graph: bool, owned: bool = False
    ) -> tuple[torch.Tensor, _Graph]:
        leaves = self._leaves(x, owned)
        with torch.enable_grad():
            value = _check_scalar(self._call(leaves), _WHERE)
            if value.requires_grad:
                grads = _grad([value], leaves, create_graph=create_graph)
            else:  # the value does not depend on x_dict: every derivative is zero
                grads = [None] * len(leaves)
        return value, _Graph(leaves, grads)

    def _graph(self, x: np.ndarray) -> _Graph:
        graph = self._cache.get(x)
        if graph is None:
            _, graph = self._run(x, create_graph=True)
            self._cache.put(x, graph)
        return graph

    def value_and_grad(self, x: np.ndarray, owned: bool = False) -> tuple[float, np.ndarray]:
        x = as_vector(x, self.n, "x")
        value, graph = self._run(x, create_graph=self.second_order, owned=owned)
        if self.second_order:
            self._cache.put(x, graph)
        else:
            self._cache.clear()
        grads = [
            torch.zeros_like(leaf) if g is None else g.detach()
            for g, leaf in zip(graph.grads, graph.leaves, strict=True)
        ]
        out, vec = self.codec.flatten(value.detach(), grads)
        return (out if type(out) is float else float(value.detach())), vec

    def _hvp(self, graph: _Graph, p: np.ndarray) -> np.ndarray:
        outputs, grad_outputs = _connected(graph.grads, self._parts(p))
        if not outputs:
            return np.zeros(self.n)
        return self._flat(_grad(outputs, graph.leaves, grad_outputs), graph.leaves)

    def hvp(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        x = as_vector(x, self.n, "x")
        return self._hvp(self._graph(x), as_vector(p, self.n, "p"))

    def hess(self, x: np.ndarray) -> np.ndarray:
        graph = self._graph(as_vector(x, self.n, "x"))
        n = self.n
        outputs, grad_outputs = _connected(graph.grads, self._identity_blocks(n))
        if not outputs:
            return np.zeros((n, n))
        eye = np.eye(n)
        h = self._stack(n, outputs, grad_outputs, graph.leaves, lambda i: self._hvp(graph, eye[i]))
        return (h + h.T) / 2


class TorchVectorAD(_Base):
    """:class:`~dict_minimize._structure.types.VectorAD` for PyTorch; see :func:`vector_ad`."""

    def __init__(self, layout: Layout, codec: Codec, cfun: Callable, args: tuple, *, jit: Any):
        super().__init__(layout, codec, cfun, args, jit)
        self._cache: PointCache[_ConstraintGraph] = PointCache()

    def _graph(self, x: np.ndarray) -> _ConstraintGraph:
        x = as_vector(x, self.n, "x")
        graph = self._cache.get(x)
        if graph is None:
            leaves = self._leaves(x)
            with torch.enable_grad():
                out = _check_vector(self._call(leaves), _WHERE).reshape(-1)
            graph = _ConstraintGraph(leaves, out, [])
            self._cache.put(x, graph)
        return graph

    def value(self, x: np.ndarray) -> np.ndarray:
        out = self._graph(x).out.detach()
        return out.to(device=_CPU, dtype=torch.float64, copy=True).numpy()

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        graph = self._graph(x)
        out = graph.out
        m = out.numel()
        if m == 0 or not out.requires_grad:
            return np.zeros((m, self.n))
        eye = torch.eye(m, dtype=out.dtype, device=out.device)

        def one_row(i: int) -> np.ndarray:
            return self._flat(_grad([out], graph.leaves, [eye[i]]), graph.leaves)

        return self._stack(m, [out], [eye], graph.leaves, one_row)

    def vhp(self, x: np.ndarray, v: np.ndarray, p: np.ndarray) -> np.ndarray:
        graph = self._graph(x)
        out = graph.out
        m = out.numel()
        v = as_vector(v, m, "v")
        p = as_vector(p, self.n, "p")
        if m == 0 or not out.requires_grad:
            return np.zeros(self.n)
        if graph.vgrad and np.array_equal(graph.vgrad[0][0], v):
            grads = graph.vgrad[0][1]
        else:
            weights = torch.from_numpy(v.copy()).to(device=out.device, dtype=out.dtype)
            with torch.enable_grad():
                grads = _grad([out], graph.leaves, [weights], create_graph=True)
            graph.vgrad[:] = [(v.copy(), grads)]
        outputs, grad_outputs = _connected(grads, self._parts(p))
        if not outputs:
            return np.zeros(self.n)
        return self._flat(_grad(outputs, graph.leaves, grad_outputs), graph.leaves)


def scalar_ad(
    layout: Layout,
    codec: Codec,
    fun: Callable,
    args: tuple,
    *,
    jit: bool | None = None,
    second_order: bool = False,
) -> TorchScalarAD:
    """:class:`~dict_minimize._structure.types.ScalarAD` by autograd (the arguments:
    :class:`~dict_minimize._structure.types.Backend`). ``jit`` is accepted and ignored (PyTorch
    runs eagerly); ``second_order`` keeps the graph of the last gradient."""
    return TorchScalarAD(layout, codec, fun, args, jit=jit, second_order=second_order)


def vector_ad(
    layout: Layout, codec: Codec, cfun: Callable, args: tuple, *, jit: bool | None = None
) -> TorchVectorAD:
    """:class:`~dict_minimize._structure.types.VectorAD` by autograd; ``jacobian`` and ``vhp``
    reuse the graph of ``value`` at the same point."""
    return TorchVectorAD(layout, codec, cfun, args, jit=jit)


def value_and_grad(fun: Callable) -> Callable[..., tuple[torch.Tensor, Mapping]]:
    where = "in value_and_grad(fun)"

    @functools.wraps(fun)
    def value_and_grad_fun(x_dict: Mapping, *args: Any) -> tuple[torch.Tensor, Mapping]:
        keys, values = dict_entries(
            x_dict,
            where,
            "torch.Tensor",
            lambda t: isinstance(t, torch.Tensor),
            lambda t: None if t.is_floating_point() else t.dtype,
        )
        leaves = [t.detach().requires_grad_(True) for t in values]  # new leaves, same storage
        factory = _mapping_factory(x_dict)
        with torch.enable_grad():
            value = _check_scalar(fun(factory(zip(keys, leaves, strict=True)), *args), where)
            got = _grad([value], leaves) if value.requires_grad else [None] * len(leaves)
        grads = [
            torch.zeros_like(x) if g is None else g.detach()
            for g, x in zip(got, leaves, strict=True)
        ]
        return value.detach(), factory(zip(keys, grads, strict=True))

    return value_and_grad_fun


value_and_grad.__doc__ = VALUE_AND_GRAD_DOC.format(
    name="PyTorch",
    module="torch",
    tensor="torch.Tensor",
    detached=", detached from the graph",
    example="""
    >>> import torch
    >>> from dict_minimize.torch_api import minimize, value_and_grad
    >>> f = value_and_grad(lambda d, c: ((d["x"] - c) ** 2).sum())
    >>> f({"x": torch.zeros(2)}, 2.0)
    (tensor(8.), {'x': tensor([-4., -4.])})
    >>> minimize(f, {"x": torch.zeros(2)}, args=(2.0,), method="L-BFGS-B")["x"]
    tensor([2., 2.])
""",
)

__all__ = ["TorchScalarAD", "TorchVectorAD", "scalar_ad", "value_and_grad", "vector_ad"]
