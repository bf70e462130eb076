"""Types shared by the core and the backends: the backend record and the codec it builds.

A backend is a record of pure functions (no class hierarchy). It recognises its framework's
tensors without importing the framework, describes each entry of ``x0`` once, and builds a
:class:`Codec` for one layout: the hot-path conversions between SciPy's float64 vector and the
framework's tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    from dict_minimize._structure.layout import Layout

Tensor = Any
FloatVector = np.ndarray


class EntryInfo(NamedTuple):
    """What a backend reports about one entry of ``x0``."""

    shape: tuple[int, ...]
    dtype: Any  # the framework's dtype object
    np_dtype: np.dtype | None  # NumPy equivalent of dtype, None if NumPy has none
    device: Any  # framework device (or sharding), None for NumPy


class Unflatten(Protocol):
    def __call__(
        self, vec: FloatVector, *, for_objective: bool, owned: bool = False
    ) -> list[Tensor]: ...


class Flatten(Protocol):
    def __call__(self, value: Any, grads: Sequence[Tensor]) -> tuple[Any, FloatVector]: ...


class Codec(NamedTuple):
    """Conversions for one layout, built once before SciPy starts.

    ``unflatten(vec, for_objective=...)`` turns SciPy's float64 vector into one tensor per key
    (in layout order) with each entry's dtype, shape and device; ``for_objective=True`` gives
    what the objective sees (PyTorch: leaves that require grad), ``False`` what results and
    callbacks hold (PyTorch: plain tensors that do not require grad). ``owned=True`` says
    ``vec`` is a private float64 copy that nobody writes afterwards (SciPy's wrapper made it for
    this evaluation): a backend whose tensors cannot be written in place by the objective
    (PyTorch leaves that require grad, immutable JAX arrays) may then share its memory instead
    of copying it.

    ``flatten(value, grads)`` validates the gradients (a list in layout order), concatenates them
    and returns ``(value, float64 vector)``; ``value`` comes back unconverted unless the backend
    moved it to the host together with the gradient (then a float).
    """

    unflatten: Unflatten
    flatten: Flatten
    #: ``bind_pair(fun, args, slow) -> value_and_grad(x)`` or None: one ``jac=True``
    #: evaluation of ``fun`` on SciPy's vector with the split and the match done by code
    #: generated for the layout (``slow(out)`` converts an output that code does not expect);
    #: None where the backend has none (every backend but NumPy's, nested layouts) or has not
    #: compiled it (yet)
    bind_pair: Callable[..., Callable[[FloatVector], tuple[float, FloatVector]] | None] | None = (
        None
    )


class ScalarAD(Protocol):
    """Exact derivatives of a scalar objective of the dict, on SciPy's flat float64 vector.

    Built by a backend's ``scalar_ad(layout, codec, fun, args, jit=..., second_order=...)`` for
    ``jac='autodiff'``. ``fun(x_dict, *args)`` returns only the value (a scalar tensor of the
    framework, computed from ``x_dict``).

    - ``value_and_grad(x, owned=False) -> (float, (n,) float64)``: one forward and one
      backward pass; ``owned`` as for :class:`Codec`'s ``unflatten``.
    - ``hvp(x, p) -> (n,) float64``: the exact Hessian-vector product at ``x``. With
      ``second_order=True`` the backend keeps what it needs from the last ``value_and_grad`` so
      that products at that same ``x`` do not call ``fun`` again.
    - ``hess(x) -> (n, n) float64``: the dense Hessian (symmetric), the same reuse.
    - ``fun_calls``: how many times the user's ``fun`` ran (Python calls; traces under jit).
    """

    @property
    def fun_calls(self) -> int: ...

    def value_and_grad(self, x: FloatVector, owned: bool = False) -> tuple[float, FloatVector]: ...

    def hvp(self, x: FloatVector, p: FloatVector) -> FloatVector: ...

    def hess(self, x: FloatVector) -> FloatVector: ...


class CompiledPair(Protocol):
    """``fun(x_dict, *args) -> (value, grad_dict)`` (``jac=True``) compiled as one function of
    SciPy's flat vector, for a ``fun`` the framework can trace (a ``jax.jit`` or ``tf.function``).

    Built by a backend's ``compile_pair(layout, codec, fun, args, jit=...)``, which returns None
    when it does not compile (``jit=False``, or ``jit=None`` and ``fun`` is not already compiled).
    Splitting the vector, calling ``fun`` and joining the gradients are one compiled call: the
    per-call cost of a compiled ``fun`` over many entries (one argument per entry) is gone.

    - ``value_and_grad(x) -> (float, (n,) float64)``: one call, one transfer each way.
    - ``fun_calls``: how many times the user's ``fun`` ran in Python (traces).
    """

    @property
    def fun_calls(self) -> int: ...

    def value_and_grad(self, x: FloatVector) -> tuple[float, FloatVector]: ...


class VectorAD(Protocol):
    """Exact derivatives of a vector-valued function of the dict (a constraint).

    Built by a backend's ``vector_ad(layout, codec, cfun, args, jit=...)``. ``cfun(x_dict,
    *args)`` returns a tensor of any shape (a scalar included), flattened to ``m`` values.

    - ``value(x) -> (m,) float64``
    - ``jacobian(x) -> (m, n) float64``, columns in the layout's order.
    - ``vhp(x, v, p) -> (n,) float64``: ``(sum_i v[i] * Hessian(c_i)(x)) @ p``, the constraint's
      term of the Lagrangian Hessian as trust-constr asks for it.
    - ``fun_calls``: how many times ``cfun`` ran.
    """

    @property
    def fun_calls(self) -> int: ...

    def value(self, x: FloatVector) -> FloatVector: ...

    def jacobian(self, x: FloatVector) -> FloatVector: ...

    def vhp(self, x: FloatVector, v: FloatVector, p: FloatVector) -> FloatVector: ...


class SparseProducts(Protocol):
    """Batched derivative products of ``fun(x_dict, *args)`` (any shape, flattened to ``m``
    values) on SciPy's flat vector: what compressed sparse Jacobians and Hessians are made of.

    Built by a backend's ``sparse_products(layout, codec, fun, args, jit=...)``; ``seeds`` hold
    one product direction per column, and all columns go through the framework in one batched
    call where it can (``vmap``).

    - ``value(x) -> (m,) float64``
    - ``jvps(x, seeds (n, k)) -> (m, k)``: ``J(x) @ seeds`` (forward mode).
    - ``vjps(x, seeds (m, k)) -> (n, k)``: ``J(x).T @ seeds`` (reverse mode).
    - ``hvps(x, w (m,), seeds (n, k)) -> (n, k)``: ``Hessian(w · fun)(x) @ seeds``
      (forward-over-reverse); for a scalar ``fun``, ``w = [1.0]``.
    - ``fun_calls``: how many times ``fun`` ran (Python calls; traces under jit).
    """

    @property
    def fun_calls(self) -> int: ...

    def value(self, x: FloatVector) -> FloatVector: ...

    def jvps(self, x: FloatVector, seeds: np.ndarray) -> np.ndarray: ...

    def vjps(self, x: FloatVector, seeds: np.ndarray) -> np.ndarray: ...

    def hvps(self, x: FloatVector, w: FloatVector, seeds: np.ndarray) -> np.ndarray: ...


class Backend(NamedTuple):
    """The record that adapts one framework to the core.

    ``scalar_ad`` and ``vector_ad`` build the automatic-differentiation objects
    (:class:`ScalarAD`, :class:`VectorAD`); None for a framework without autodiff (NumPy).
    ``compile_pair`` builds a :class:`CompiledPair` (or None); None for a framework that does
    not compile (NumPy, PyTorch). Their arguments, the same in every backend:

    - ``layout``: the structure of ``x0``; ``codec``: the backend's codec for it;
    - ``fun`` (``cfun`` for ``vector_ad``): returns a real floating tensor of the framework
      computed from ``x_dict`` (a scalar for ``scalar_ad``, any shape for ``vector_ad``, the
      pair ``(value, grad_dict)`` for ``compile_pair``); ``args``: its extra positional
      arguments;
    - ``jit``: True compiles, False runs eagerly, None lets the backend choose (each backend's
      factory says how); a framework without a compiler accepts and ignores it;
    - ``second_order`` (``scalar_ad``): keep what the last gradient computed so that Hessian
      products at the same point do not call ``fun`` again.

    ``sparse_products(layout, codec, fun, args, jit=...)`` builds the
    :class:`SparseProducts` of a function of any shape for sparse derivatives; None for a
    framework without autodiff.

    ``intra_op_threads`` is ``(get, set)`` of the framework's intra-op thread count, which
    :mod:`dict_minimize._threads` caps during a solve; None for a framework whose threads
    cannot change after it starts (JAX/XLA, TensorFlow) or that has none of its own (NumPy: its
    BLAS is capped through threadpoolctl).
    """

    name: str
    owns: Callable[[Any], bool]
    describe: Callable[[Hashable, Any], EntryInfo]
    make_codec: Callable[[Layout], Codec]
    to_numpy: Callable[[Any], np.ndarray]
    scalar_ad: Callable[..., ScalarAD] | None = None
    vector_ad: Callable[..., VectorAD] | None = None
    compile_pair: Callable[..., CompiledPair | None] | None = None
    intra_op_threads: tuple[Callable[[], int], Callable[[int], None]] | None = None
    sparse_products: Callable[..., SparseProducts] | None = None
