"""Sparse Jacobians and Hessians by autodiff: patterns, colouring and compressed products.

A user gives a sparsity pattern (``jac_sparsity=`` on a constraint or on ``least_squares``,
``hess_sparsity=`` for the objective); this module reads it into one canonical form, colours
its columns (or rows) so that structurally orthogonal ones share a colour, and computes the
derivative with one product per colour through the backend's
:class:`~dict_minimize._structure.types.SparseProducts` (``jax.vmap`` of ``jax.jvp``,
``torch.func.vmap`` of ``torch.func.jvp`` ...). No framework is imported here.

The protocol other solvers read (Ipopt):

- :class:`SparseDerivative`: ``shape``, ``rows``, ``cols`` (the pattern, canonical row-major
  order, unique), ``ncolors`` (products per evaluation), ``values(x, *weights)`` ((nnz,)
  float64 in ``(rows, cols)`` order) and ``matrix(x, *weights)`` (a ``scipy.sparse.csr_array``).
  A constraint's Jacobian: ``values(x)``; a constraint's weighted Hessian ``∇²(v·c)(x)``:
  ``values(x, v)`` over the full symmetric ``(n, n)`` pattern; the objective's Hessian:
  ``values(x)``.
- every SciPy constraint object that ``make_constraints`` builds from a constraint with a
  pattern carries ``con._dm_jac`` and ``con._dm_hess`` (``SparseDerivative``). ``_dm_hess`` is
  None where the Hessian pattern the Jacobian's rows imply would hold more than
  :data:`MAX_HESSIAN_NNZ` entries (a row that touches most variables): trust-constr then gets
  the Hessian as a ``LinearOperator`` of exact products.
- the :class:`~dict_minimize._problem.objective.Objective` built with ``hess_sparsity`` carries
  ``run.sparse_hess`` (``SparseDerivative``, else None).

Colouring: greedy distance-1 colouring of the column intersection graph (two columns conflict
when a row has both), in the natural order (optimal for banded patterns) and, unless that
reaches the lower bound (the longest row), largest-first by the number of conflicts: the
better of the two. A Jacobian is coloured by columns
(forward products) and by rows (reverse products, ``J^T w``): the one with fewer colours is
used. Hessians: the same column colouring of the symmetric pattern (direct recovery, no star or
acyclic colouring), except that a few dense columns (a variable in every equation) get a colour
each and their rows are read by symmetry (:func:`color_symmetric`); forward-over-reverse
products.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse

from dict_minimize._errors import at, fmt_shape, type_name
from dict_minimize._structure.layout import Layout, keyed_like_x0
from dict_minimize._structure.tree import partial_leaves
from dict_minimize._structure.types import Backend, Codec, SparseProducts

#: the largest constraint Hessian pattern built from a Jacobian's rows (entries)
MAX_HESSIAN_NNZ = 20_000_000
#: columns per dense product in :meth:`SparseDerivative.check`
_CHECK_BLOCK = 256


# --- patterns ------------------------------------------------------------------------------------


def _as_bool_csr(value: Any, where: str) -> scipy.sparse.csr_array:
    """A 2-D bool array or a SciPy sparse matrix as a canonical bool CSR array."""
    if scipy.sparse.issparse(value):
        mat = scipy.sparse.csr_array(value, dtype=np.float64)
        mat.data = np.ones_like(mat.data)  # stored zeros count: the pattern is the structure
    else:
        arr = np.asarray(value)
        if arr.dtype != np.bool_:
            raise TypeError(
                f"{where} must be a bool array or a scipy.sparse matrix; got an array of "
                f"dtype {arr.dtype}"
            )
        if arr.ndim != 2:
            raise ValueError(f"{where} has shape {fmt_shape(arr.shape)}; expected 2 dimensions")
        mat = scipy.sparse.csr_array(arr.astype(np.float64))
    mat.sum_duplicates()
    mat.sort_indices()
    return scipy.sparse.csr_array(
        (np.ones(mat.nnz, dtype=np.bool_), mat.indices.astype(np.int64), mat.indptr),
        shape=mat.shape,
    )


def _check_kind(spec: Any, where: str) -> None:
    if spec is None or isinstance(spec, (str, bytes, bool, int, float)):
        raise TypeError(
            f"{where} must be a bool array, a scipy.sparse matrix or a dict of them per key of "
            f"x0; got {spec!r}"
            + (" (automatic detection is not supported)" if spec == "auto" else "")
        )


def _blocks(spec: Any, layout: Layout, where: str) -> dict[int, Any]:
    """A dict per key of x0 as {layout position: block}; unknown keys are an error."""
    if layout.tree is not None:
        spec = partial_leaves(spec, layout.tree, where, broadcast=False)
    pos = {k: i for i, k in enumerate(layout.keys)}
    unknown = [k for k in spec if k not in pos]
    if unknown:
        raise ValueError(
            f"{where} has key {unknown[0]!r}, which is not a key of x0 (x0's keys: "
            f"{', '.join(repr(k) for k in layout.keys)})"
        )
    return {pos[k]: v for k, v in spec.items()}


def jacobian_pattern(
    spec: Any, layout: Layout, where: str
) -> tuple[scipy.sparse.csr_array, tuple[int, ...] | None]:
    """The ``(m, n)`` bool pattern of a Jacobian, and the output's shape where the spec shows it.

    ``spec``: an ``(m, n)`` bool array or SciPy sparse matrix over the flat vector, or a dict per
    key of x0 of bool arrays of shape ``(*out_shape, *x0[key].shape)`` or SciPy sparse
    ``(m, x0[key].size)`` matrices; keys left out do not enter the output.

    Example:
        >>> import numpy as np
        >>> from dict_minimize._structure.layout import make_layout
        >>> from dict_minimize.backends import get_backend
        >>> lay = make_layout({"a": np.zeros(3), "b": np.zeros(())}, get_backend("numpy"))
        >>> p, out = jacobian_pattern({"a": np.eye(3, dtype=bool)}, lay, "jac_sparsity")
        >>> p.toarray().astype(int), out
        (array([[1, 0, 0, 0],
               [0, 1, 0, 0],
               [0, 0, 1, 0]]), (3,))
    """
    _check_kind(spec, where)
    n = layout.n
    if not keyed_like_x0(spec, layout):
        mat = _as_bool_csr(spec, where)
        if mat.shape[1] != n:
            raise ValueError(
                f"{where} has shape {fmt_shape(mat.shape)}; expected (m, {n}): one column per "
                "element of x0, in x0's key order (or a dict of per-key patterns)"
            )
        return mat, None
    parts: dict[int, scipy.sparse.csr_array] = {}
    m: int | None = None
    out_shape: tuple[int, ...] | None = None
    for i, block in _blocks(spec, layout, where).items():
        key, shape, size = layout.keys[i], layout.shapes[i], layout.sizes[i]
        here = at(where, key)
        _check_kind(block, here)
        if scipy.sparse.issparse(block):
            mat = _as_bool_csr(block, here)
            if mat.shape[1] != size:
                raise ValueError(
                    f"{here} has shape {fmt_shape(mat.shape)}; expected (m, {size}): one column "
                    f"per element of {at('x0', key)}"
                )
            lead: tuple[int, ...] | None = None
        else:
            arr = np.asarray(block)
            if arr.dtype != np.bool_:
                raise TypeError(f"{here} must be a bool array; got dtype {arr.dtype}")
            if arr.ndim < len(shape) or arr.shape[arr.ndim - len(shape) :] != shape:
                raise ValueError(
                    f"{here} has shape {fmt_shape(arr.shape)}; expected (*out_shape, "
                    f"*{fmt_shape(shape)}): the constraint's output axes, then the shape of "
                    f"{at('x0', key)}"
                )
            lead = arr.shape[: arr.ndim - len(shape)]
            mat = _as_bool_csr(arr.reshape(int(np.prod(lead)), size), here)
        if m is not None and mat.shape[0] != m:
            raise ValueError(
                f"{here} covers {mat.shape[0]} output value(s), but other keys cover {m}"
            )
        m = mat.shape[0]
        if lead is not None:
            out_shape = lead
        parts[i] = mat
    if m is None:
        raise ValueError(f"{where} is empty: give the pattern of at least one key")
    cols = []
    for i in range(len(layout.keys)):
        size = layout.sizes[i]
        cols.append(parts.get(i, scipy.sparse.csr_array((m, size), dtype=np.bool_)))
    return _as_bool_csr(scipy.sparse.hstack(cols, format="csr"), where), out_shape


def hessian_pattern(spec: Any, layout: Layout, where: str) -> scipy.sparse.csr_array:
    """The symmetric ``(n, n)`` bool pattern of the objective's Hessian.

    ``spec``: an ``(n, n)`` bool array or SciPy sparse matrix, or a dict of dicts of per-key
    blocks (``spec[ki][kj]`` of shape ``x0[ki].shape + x0[kj].shape``, or SciPy sparse
    ``(x0[ki].size, x0[kj].size)``); missing blocks are zero. Made symmetric (``P | P.T``).
    """
    _check_kind(spec, where)
    n = layout.n
    if not keyed_like_x0(spec, layout):
        mat = _as_bool_csr(spec, where)
        if mat.shape != (n, n):
            raise ValueError(
                f"{where} has shape {fmt_shape(mat.shape)}; expected ({n}, {n}) (the number of "
                "scalars in x0), or a dict of dicts of per-key blocks"
            )
    else:
        grid: list[list[Any]] = [[None] * len(layout.keys) for _ in layout.keys]
        for i, row in _blocks(spec, layout, where).items():
            here = at(where, layout.keys[i])
            if not keyed_like_x0(row, layout):
                raise TypeError(f"{here} must be a dict of blocks per key; got a {type_name(row)}")
            for j, block in _blocks(row, layout, here).items():
                there = at(here, layout.keys[j])
                _check_kind(block, there)
                want = (layout.sizes[i], layout.sizes[j])
                if scipy.sparse.issparse(block):
                    blk = _as_bool_csr(block, there)
                else:
                    arr = np.asarray(block)
                    full = layout.shapes[i] + layout.shapes[j]
                    if arr.shape != full:
                        raise ValueError(
                            f"{there} has shape {fmt_shape(arr.shape)}; expected "
                            f"{fmt_shape(full)} ({at('x0', layout.keys[i])}.shape + "
                            f"{at('x0', layout.keys[j])}.shape)"
                        )
                    blk = _as_bool_csr(arr.reshape(want), there)
                if blk.shape != want:
                    raise ValueError(
                        f"{there} has shape {fmt_shape(blk.shape)}; expected {fmt_shape(want)}"
                    )
                grid[i][j] = blk
        for i, size in enumerate(layout.sizes):  # bmat needs each block row/column sized once
            if all(b is None for b in grid[i]):
                grid[i][i] = scipy.sparse.csr_array((size, size), dtype=np.bool_)
        mat = _as_bool_csr(scipy.sparse.bmat(grid, format="csr"), where)
    return _as_bool_csr(mat + mat.T, where)


def lagrangian_pattern(jac: scipy.sparse.csr_array) -> scipy.sparse.csr_array | None:
    """The pattern of ``∇²(v·c)`` implied by a Jacobian pattern (a clique of the columns of each
    row), or None when it would hold more than :data:`MAX_HESSIAN_NNZ` entries."""
    counts = np.diff(jac.indptr)
    if float(np.sum(counts.astype(np.float64) ** 2)) > MAX_HESSIAN_NNZ:
        return None
    j = jac.astype(np.float64)
    return _as_bool_csr(j.T @ j, "the Hessian pattern")


# --- colouring -----------------------------------------------------------------------------------


def _greedy(col_rows: list[list[int]], m: int, order: np.ndarray) -> np.ndarray:
    """Greedy distance-1 colouring of the column intersection graph, columns in ``order``."""
    colors = np.empty(len(col_rows), dtype=np.int64)
    row_colors: list[set[int]] = [set() for _ in range(m)]
    for j in order.tolist():
        rows = col_rows[j]
        used: set[int] = set().union(*(row_colors[i] for i in rows)) if rows else set()
        c = 0
        while c in used:
            c += 1
        colors[j] = c
        for i in rows:
            row_colors[i].add(c)
    return colors


def color_columns(pattern: scipy.sparse.csr_array) -> tuple[np.ndarray, int]:
    """Colours of the pattern's columns: no two columns of one colour share a row.

    Returns ``(colors, ncolors)``: the natural order's colouring where it reaches the lower
    bound (the largest number of entries in a row), else the better of it and largest-first.

    Example:
        >>> import numpy as np, scipy.sparse
        >>> band = scipy.sparse.eye_array(6, k=0) + scipy.sparse.eye_array(6, k=1)
        >>> color_columns(scipy.sparse.csr_array(band != 0))
        (array([0, 1, 0, 1, 0, 1]), 2)
    """
    m, n = pattern.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    csc = scipy.sparse.csc_array(pattern)
    csc.sort_indices()
    indptr, indices = csc.indptr.tolist(), csc.indices.tolist()
    col_rows = [indices[indptr[j] : indptr[j + 1]] for j in range(n)]
    row_len = np.diff(pattern.indptr)
    bound = int(row_len.max()) if m else 0  # a row's columns all need different colours
    best = _greedy(col_rows, m, np.arange(n))  # the natural order: optimal on banded patterns
    if best.max() + 1 > bound:
        degree = np.asarray(pattern.T.astype(np.float64) @ row_len.astype(np.float64)).ravel()
        largest_first = _greedy(col_rows, m, np.argsort(-degree, kind="stable"))
        if largest_first.max() < best.max():
            best = largest_first
    return best, int(best.max()) + 1 if pattern.nnz else 1


def color_symmetric(
    pattern: scipy.sparse.csr_array,
) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Colours of a symmetric pattern's columns for direct recovery, using the symmetry for
    dense rows: ``(colors, ncolors, dense)``.

    A few columns much longer than the rest (a variable in every equation: a final time, a
    scale) make every pair of columns conflict. Each such column gets a colour of its own —
    its product is its column exactly, so its row follows by symmetry — and the others are
    coloured without those rows. Used where it needs fewer colours than the plain colouring;
    ``dense`` marks those columns (None: the plain colouring).

    Example:
        >>> import numpy as np, scipy.sparse
        >>> arrow = np.eye(50, dtype=bool)
        >>> arrow[0, :] = arrow[:, 0] = True
        >>> color_symmetric(scipy.sparse.csr_array(arrow))[1], color_columns(
        ...     scipy.sparse.csr_array(arrow))[1]
        (2, 50)
    """
    colors, ncolors = color_columns(pattern)
    n = pattern.shape[1]
    counts = np.diff(pattern.indptr)
    if n == 0 or pattern.nnz == 0:
        return colors, ncolors, None
    dense = counts > max(8, 3 * float(np.median(counts)))
    if not dense.any() or dense.sum() >= ncolors:
        return colors, ncolors, None
    rest = np.flatnonzero(~dense)
    sub = scipy.sparse.csr_array(pattern[rest][:, rest])
    sub_colors, sub_n = color_columns(sub)
    if int(dense.sum()) + sub_n >= ncolors:
        return colors, ncolors, None
    out = np.empty(n, dtype=np.int64)
    out[rest] = sub_colors
    out[dense] = sub_n + np.arange(int(dense.sum()))
    return out, sub_n + int(dense.sum()), dense


def _seeds(colors: np.ndarray, ncolors: int) -> np.ndarray:
    seeds = np.zeros((colors.shape[0], ncolors))
    seeds[np.arange(colors.shape[0]), colors] = 1.0
    return seeds


# --- the sparse derivative -----------------------------------------------------------------------


class SparseDerivative:
    """A sparse Jacobian or Hessian computed by compressed autodiff products.

    ``kind``: ``"jac"`` (``values(x)``), ``"hess"`` (the Hessian of a scalar function:
    ``values(x)``) or ``"vhess"`` (``∇²(v·c)(x)``: ``values(x, v)``). The attributes ``shape``,
    ``rows``, ``cols``, ``ncolors`` and the methods ``values`` and ``matrix`` are the protocol
    (see the module notes); ``mode`` is ``"forward"`` (a product per column colour) or
    ``"reverse"`` (a vector-Jacobian product per row colour); ``evaluations`` counts
    ``values`` calls. ``mode=None`` picks the one with fewer colours (forward on a tie).

    Example:
        >>> import numpy as np
        >>> class Square:  # products of c(x) = x**2, by hand
        ...     fun_calls = 0
        ...     def jvps(self, x, s): return 2 * x[:, None] * s
        ...     def vjps(self, x, w): return 2 * x[:, None] * w
        ...     def hvps(self, x, w, s): return 2 * w[:, None] * s
        >>> pattern = scipy.sparse.csr_array(np.eye(3, dtype=bool))
        >>> jac = SparseDerivative("jac", pattern, Square(), "c")
        >>> jac.ncolors, jac.values(np.array([1.0, 2.0, 3.0]))
        (1, array([2., 4., 6.]))
    """

    def __init__(
        self,
        kind: str,
        pattern: scipy.sparse.csr_array,
        products: SparseProducts,
        where: str,
        *,
        layout: Layout | None = None,
        out_shape: tuple[int, ...] | None = None,
        name: str = "jac_sparsity",
        mode: str | None = None,
    ) -> None:
        self.kind, self.products, self.where, self.name = kind, products, where, name
        self.layout, self.out_shape = layout, out_shape
        self.shape: tuple[int, int] = (int(pattern.shape[0]), int(pattern.shape[1]))
        self._indptr = pattern.indptr.astype(np.int64)
        self.cols = pattern.indices.astype(np.int64)
        self.rows = np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self._indptr))
        self.mode = "forward"
        self._dense: np.ndarray | None = None  # symmetric recovery's dense columns
        if kind == "jac":
            self.colors, self.ncolors = color_columns(pattern)
        else:
            self.colors, self.ncolors, self._dense = color_symmetric(pattern)
        col_len = np.bincount(self.cols, minlength=self.shape[1])
        # reverse mode needs at least as many colours as the longest column has entries
        longest = int(np.max(col_len)) if col_len.size else 0
        could = mode == "reverse" or (longest < self.ncolors and mode is None)
        if kind == "jac" and could:
            row_colors, nrow = color_columns(scipy.sparse.csr_array(pattern.T))
            if nrow < self.ncolors or mode == "reverse":
                self.mode, self.colors, self.ncolors = "reverse", row_colors, nrow
        size = self.shape[0] if self.mode == "reverse" else self.shape[1]
        self._seeds = _seeds(self.colors, self.ncolors) if size else np.zeros((0, 0))
        self.evaluations = 0

    @property
    def nnz(self) -> int:
        return int(self.cols.shape[0])

    def _weights(self, weights: tuple) -> np.ndarray:
        if self.kind == "vhess":
            if len(weights) != 1:
                raise TypeError("values(x, v) of a constraint's Hessian needs the multipliers v")
            return np.ascontiguousarray(weights[0], dtype=np.float64).reshape(-1)
        if weights:
            raise TypeError(f"values(x) of a {self.kind} takes no weights")
        return np.ones(1)

    def compressed(self, x: np.ndarray, *weights: Any) -> np.ndarray:
        """The compressed product: ``(m, ncolors)`` forward, ``(n, ncolors)`` reverse."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if self.kind == "jac":
            self._weights(weights)
            if self.mode == "reverse":
                return np.asarray(self.products.vjps(x, self._seeds), dtype=np.float64)
            return np.asarray(self.products.jvps(x, self._seeds), dtype=np.float64)
        return np.asarray(
            self.products.hvps(x, self._weights(weights), self._seeds), dtype=np.float64
        )

    def values(self, x: np.ndarray, *weights: Any) -> np.ndarray:
        """The pattern's entries at ``x``: ``(nnz,)`` float64 in ``(rows, cols)`` order."""
        self.evaluations += 1
        if self.nnz == 0:
            return np.zeros(0)
        got = self.compressed(x, *weights)
        rows_out = self.shape[1] if self.mode == "reverse" else self.shape[0]
        if got.shape[0] != rows_out:
            raise ValueError(
                f"{self.where} returned {got.shape[0]} value(s), but its {self.name} has "
                f"{self.shape[0]} row(s); give a pattern of shape ({got.shape[0]}, "
                f"{self.shape[1]})"
            )
        if self.mode == "reverse":
            return got[self.cols, self.colors[self.rows]]
        vals = got[self.rows, self.colors[self.cols]]
        if self._dense is not None:  # entries of a dense row, from that column's own product
            sel = self._dense[self.rows] & ~self._dense[self.cols]
            vals[sel] = got[self.cols[sel], self.colors[self.rows[sel]]]
        return vals

    def matrix(self, x: np.ndarray, *weights: Any) -> scipy.sparse.csr_array:
        """The derivative at ``x`` as a ``scipy.sparse.csr_array`` of ``shape``."""
        return scipy.sparse.csr_array(
            (self.values(x, *weights), self.cols, self._indptr), shape=self.shape
        )

    def info(self) -> dict[str, Any]:
        """What the result reports: colours (products per evaluation), mode, nnz, shape."""
        return {"colors": self.ncolors, "mode": self.mode, "nnz": self.nnz, "shape": self.shape}

    # -- the opt-in check ------------------------------------------------------------------------
    def _dense_block(self, x: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Columns ``lo:hi`` of the dense derivative at ``x`` (forward products)."""
        seeds = np.zeros((self.shape[1], hi - lo))
        seeds[np.arange(lo, hi), np.arange(hi - lo)] = 1.0
        if self.kind == "jac":
            return np.asarray(self.products.jvps(x, seeds), dtype=np.float64)
        return np.asarray(self.products.hvps(x, np.ones(1), seeds), dtype=np.float64)

    def check(self, x: np.ndarray) -> None:
        """Compare with the dense derivative at ``x`` (blocks of columns); a nonzero outside
        the pattern is a ValueError naming the constraint, the key of x0 and the entry."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        dense_cols = scipy.sparse.csc_array(
            (np.ones(self.nnz, dtype=np.bool_), (self.rows, self.cols)), shape=self.shape
        )
        for lo in range(0, self.shape[1], _CHECK_BLOCK):
            hi = min(lo + _CHECK_BLOCK, self.shape[1])
            block = self._dense_block(x, lo, hi)
            if block.shape[0] != self.shape[0]:
                raise ValueError(
                    f"{self.where} returned {block.shape[0]} value(s), but its {self.name} has "
                    f"{self.shape[0]} row(s)"
                )
            known = dense_cols[:, lo:hi].toarray()
            missed = np.argwhere((block != 0) & ~known)
            if missed.size:
                r, c = (int(v) for v in missed[0])
                raise ValueError(self._missed(r, lo + c, float(block[r, c]), len(missed)))

    def _name(self, col: int) -> str:
        """Column ``col`` of the flat vector as the entry of x0 it is: ``x0['w'][2, 1]``."""
        lay = self.layout
        if lay is None:
            return f"column {col}"
        i = int(np.searchsorted(lay.offsets, col, side="right")) - 1
        index = np.unravel_index(col - lay.offsets[i], lay.shapes[i]) if lay.shapes[i] else ()
        return at("x0", lay.keys[i]) + (
            "[" + ", ".join(str(int(k)) for k in index) + "]" if index else ""
        )

    def _missed(self, row: int, col: int, value: float, count: int) -> str:
        if self.kind == "jac":
            out = f"output {row}"
            if self.out_shape is not None and len(self.out_shape) > 1:
                out += f" (index {tuple(int(k) for k in np.unravel_index(row, self.out_shape))})"
            what = f"the derivative of {out} with respect to {self._name(col)}"
        else:
            what = f"the Hessian entry ({self._name(row)}, {self._name(col)})"
        more = f" ({count - 1} more in the same columns)" if count > 1 else ""
        return (
            f"{self.where}: {self.name} misses a nonzero: {what} is {value:.6g} at x0, and "
            f"the pattern has no entry there{more}. Add it to the pattern: it must hold every "
            "entry that can be nonzero"
        )


def make_products(
    backend: Backend,
    layout: Layout,
    codec: Codec,
    fun: Callable,
    args: tuple,
    jit: Any,
    where: str,
    name: str,
) -> SparseProducts:
    """The backend's compressed products of ``fun``, or the error that it has none."""
    if backend.sparse_products is None:
        raise ValueError(
            f"{where}: {name} computes sparse derivatives by automatic differentiation, and x0 "
            f"holds {backend.name} arrays; use a framework with autodiff (JAX, PyTorch, "
            "TensorFlow) or give the derivative as a callable"
        )
    return backend.sparse_products(layout, codec, fun, args, jit=jit)


def objective_hessian(
    spec: Any, layout: Layout, codec: Codec, backend: Backend, fun: Callable, args: tuple, jit: Any
) -> SparseDerivative:
    """The objective's sparse Hessian from ``hess_sparsity`` (``fun`` returns the value)."""
    pattern = hessian_pattern(spec, layout, "hess_sparsity")
    prods = make_products(backend, layout, codec, fun, args, jit, "hess_sparsity", "hess_sparsity")
    return SparseDerivative(
        "hess", pattern, prods, "hess_sparsity", layout=layout, name="hess_sparsity"
    )


def constraint_report(flat_constraints: list) -> list[dict[str, Any] | None]:
    """Per constraint: ``{"jac": info, "hess": info or None}`` where it has a pattern."""
    out: list[dict[str, Any] | None] = []
    for con in flat_constraints:
        jac = getattr(con, "_dm_jac", None)
        if jac is None:
            out.append(None)
        else:
            hess = getattr(con, "_dm_hess", None)
            out.append({"jac": jac.info(), "hess": None if hess is None else hess.info()})
    return out


__all__ = [
    "MAX_HESSIAN_NNZ",
    "SparseDerivative",
    "color_columns",
    "color_symmetric",
    "constraint_report",
    "hessian_pattern",
    "jacobian_pattern",
    "lagrangian_pattern",
    "make_products",
    "objective_hessian",
]
