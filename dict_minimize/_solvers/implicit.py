"""Implicit differentiation of a solution: ``x*(theta) = argmin_x f(x, theta)``, differentiated
with respect to ``theta`` by the implicit function theorem, never by unrolling SciPy.

At a minimum ``grad_x f(x*, theta) = 0``; differentiating that identity gives
``dx*/dtheta = -H^{-1} d2f/dx dtheta`` with ``H`` the (symmetric) Hessian of ``f`` in ``x`` at
``x*``. Reverse mode needs only products with it: for a cotangent ``v = dL/dx*``, solve
``H w = v``, then ``dL/dtheta = -d/dtheta <grad_x f(x*, theta), w>``, one more vector-Jacobian
product. The solve is shared by the frameworks and runs on the flat float64 vector (NumPy):
a dense solve when ``x`` has few scalars, conjugate gradients on Hessian-vector products
otherwise. Each framework supplies the products and the last VJP (:func:`jax_argmin`,
:func:`torch_argmin`, exported as ``jax_api.argmin`` and ``torch_api.argmin``). No framework
is imported here until its function runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dict_minimize._solvers.minimize import minimize

#: ``solve='auto'`` builds the dense Hessian up to this many scalars in ``x``, else runs CG
DENSE_MAX = 200
#: a Hessian whose smallest eigenvalue (dense) or curvature (CG) is below this fraction of the
#: largest counts as singular
RCOND = 1e-10
SOLVES = ("auto", "cg", "dense")


class ImplicitGradientWarning(UserWarning):
    """An implicit gradient computed where its assumptions fail: the solve did not converge,
    or the Hessian at the solution is singular, indefinite or ill-conditioned, or conjugate
    gradients did not reach ``cg_tol``. The gradient is still returned; it may be wrong.

    Example:
        >>> import warnings
        >>> from dict_minimize.torch_api import ImplicitGradientWarning
        >>> warnings.simplefilter("error", ImplicitGradientWarning)  # make it fatal
    """


def _warn(message: str) -> None:
    warnings.warn(f"implicit gradient: {message}", ImplicitGradientWarning, stacklevel=3)


def check_options(solve: str, cg_tol: float, cg_maxiter: int | None) -> None:
    """Validate the options of ``argmin`` before the (expensive) forward solve."""
    if solve not in SOLVES:
        raise ValueError(f"solve must be one of {', '.join(map(repr, SOLVES))}; got {solve!r}")
    if not (isinstance(cg_tol, (int, float)) and cg_tol > 0):
        raise ValueError(f"cg_tol must be a positive float; got {cg_tol!r}")
    if cg_maxiter is not None and not (isinstance(cg_maxiter, int) and cg_maxiter > 0):
        raise ValueError(f"cg_maxiter must be a positive int or None; got {cg_maxiter!r}")


def check_minimize_kwargs(kwargs: Mapping[str, Any]) -> None:
    """Refuse the ``minimize`` options under which the theorem does not apply or ``fun`` is
    not a plain value function."""
    for name in ("constraints", "lb_dict", "ub_dict"):
        if kwargs.get(name):
            raise ValueError(
                f"argmin does not take {name}: the implicit gradient holds at an unconstrained "
                "minimum (grad_x f = 0), which an active bound or constraint breaks"
            )
    jac = kwargs.get("jac", "autodiff")
    if jac != "autodiff":
        raise ValueError(
            f"argmin needs jac='autodiff' (fun returns only the value, which is differentiated "
            f"twice); got jac={jac!r}"
        )


def converged_check(res: Any) -> None:
    """Warn when the forward solve did not report success."""
    if not res.success:
        _warn(
            f"the solve did not converge ({res.message!s}); the gradient assumes x* is a "
            "minimum (grad_x f = 0) and may be wrong"
        )


def solve_hessian(
    hvp: Callable[[np.ndarray], np.ndarray],
    v: np.ndarray,
    *,
    solve: str = "auto",
    cg_tol: float = 1e-10,
    cg_maxiter: int | None = None,
) -> np.ndarray:
    """Solve ``H w = v`` for the symmetric Hessian ``H`` given by its products ``hvp``.

    ``solve='dense'`` builds ``H`` from ``n`` products and solves through its eigenvalues
    (warning when the smallest is not above ``RCOND`` times the largest, and then returning
    the least-squares solution, which ignores the flat directions); ``'cg'`` runs conjugate
    gradients to ``||H w - v|| <= cg_tol ||v||`` (warning on zero or negative curvature, where
    it stops at the current iterate, or when ``cg_maxiter`` iterations do not reach
    ``cg_tol``); ``'auto'`` is dense up to :data:`DENSE_MAX` scalars.

    Example:
        >>> import numpy as np
        >>> H = np.array([[2.0, 1.0], [1.0, 3.0]])
        >>> w = solve_hessian(lambda p: H @ p, np.array([1.0, 0.0]), solve="cg")
        >>> bool(np.allclose(H @ w, [1.0, 0.0]))
        True
    """
    v = np.asarray(v, dtype=np.float64)
    n = v.size
    if n == 0 or not np.any(v):
        return np.zeros_like(v)
    if solve == "dense" or (solve == "auto" and n <= DENSE_MAX):
        return _dense(hvp, v)
    return _cg(hvp, v, cg_tol, cg_maxiter if cg_maxiter is not None else min(10 * n, 10_000))


def _dense(hvp: Callable[[np.ndarray], np.ndarray], v: np.ndarray) -> np.ndarray:
    n = v.size
    eye = np.eye(n)
    H = np.stack([np.asarray(hvp(eye[i]), dtype=np.float64) for i in range(n)], axis=1)
    H = 0.5 * (H + H.T)
    if not np.all(np.isfinite(H)):
        _warn("the Hessian at x* is not finite; the gradient is NaN")
        return np.full_like(v, np.nan)
    eig, vecs = np.linalg.eigh(H)
    top = float(np.max(np.abs(eig)))
    small = float(eig[0])
    if top == 0.0 or small <= RCOND * top:
        what = "singular" if abs(small) <= RCOND * top else "not positive definite"
        _warn(
            f"the Hessian at x* is {what} (eigenvalues from {small:.3g} to {float(eig[-1]):.3g})"
            "; x* is not an isolated minimum, so dx*/dtheta is not defined; returning the "
            "least-squares solution, which ignores the flat or negative directions"
        )
        keep = eig > RCOND * top
        coef = np.zeros(n)
        coef[keep] = (vecs[:, keep].T @ v) / eig[keep]
        return vecs @ coef
    return vecs @ ((vecs.T @ v) / eig)


def _cg(
    hvp: Callable[[np.ndarray], np.ndarray], v: np.ndarray, tol: float, maxiter: int
) -> np.ndarray:
    w = np.zeros_like(v)
    r = v.copy()
    p = r.copy()
    rr = float(r @ r)
    target = tol * float(np.sqrt(v @ v))
    top = 0.0  # the largest curvature p'Hp / p'p seen
    for _ in range(maxiter):
        Hp = np.asarray(hvp(p), dtype=np.float64)
        pHp = float(p @ Hp)
        pp = float(p @ p)
        if not np.isfinite(pHp):
            _warn("a Hessian-vector product at x* is not finite; the gradient is NaN")
            return np.full_like(v, np.nan)
        top = max(top, pHp / pp)
        if pHp <= RCOND * top * pp:
            what = "singular" if pHp >= -RCOND * top * pp else "not positive definite"
            _warn(
                f"the Hessian at x* is {what}: conjugate gradients met curvature "
                f"{pHp / pp:.3g} (largest {top:.3g}); x* is not an isolated minimum, so "
                "dx*/dtheta is not defined; returning the conjugate-gradient iterate"
            )
            return w
        alpha = rr / pHp
        w += alpha * p
        r -= alpha * Hp
        rr_new = float(r @ r)
        if np.sqrt(rr_new) <= target:
            return w
        p = r + (rr_new / rr) * p
        rr = rr_new
    _warn(
        f"conjugate gradients did not reach cg_tol={tol:g} in cg_maxiter={maxiter} iterations "
        f"(relative residual {np.sqrt(rr) / np.sqrt(float(v @ v)):.3g}); the Hessian may be "
        "ill-conditioned: raise cg_maxiter, or use solve='dense' for a small x"
    )
    return w


# --- nested args: Mappings, lists, tuples, namedtuples of leaves --------------------------------


def flatten(tree: Any) -> tuple[list[Any], Callable[[list[Any]], Any]]:
    """The leaves of a nest of Mappings, lists and (named)tuples, and a function that builds
    the same nest from new leaves."""
    if isinstance(tree, Mapping):
        keys = list(tree)
        parts = [flatten(tree[k]) for k in keys]
        kind = type(tree)

        def build_mapping(leaves: list[Any]) -> Any:
            items = _split(parts, leaves)
            try:
                return kind(zip(keys, items, strict=True))  # type: ignore[call-arg]
            except TypeError:  # a Mapping that cannot be built from pairs
                return dict(zip(keys, items, strict=True))

        return [leaf for leaves, _ in parts for leaf in leaves], build_mapping
    if isinstance(tree, (list, tuple)):
        parts = [flatten(item) for item in tree]
        if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # a namedtuple
            named = type(tree)

            def build(leaves: list[Any]) -> Any:
                return named(*_split(parts, leaves))
        else:
            seq = type(tree) if type(tree) in (list, tuple) else list

            def build(leaves: list[Any]) -> Any:
                return seq(_split(parts, leaves))

        return [leaf for leaves, _ in parts for leaf in leaves], build
    return [tree], lambda leaves: leaves[0]


def _split(parts: list[tuple[list[Any], Callable]], leaves: list[Any]) -> list[Any]:
    out, start = [], 0
    for sub, build in parts:
        out.append(build(leaves[start : start + len(sub)]))
        start += len(sub)
    return out


def start(
    solve: str,
    cg_tol: float,
    cg_maxiter: int | None,
    minimize_kwargs: dict[str, Any],
    args: Any,
) -> tuple[dict[str, Any], tuple]:
    """What both ``argmin`` do first: the options checked before the (expensive) forward
    solve, ``jac='autodiff'`` set, and ``args`` as a tuple."""
    check_options(solve, cg_tol, cg_maxiter)
    check_minimize_kwargs(minimize_kwargs)
    args = tuple(args) if isinstance(args, (list, tuple)) else (args,)
    return {**minimize_kwargs, "jac": "autodiff"}, args


def split_dynamic(
    leaves: list[Any], is_dynamic: Callable[[Any], bool], unflatten: Callable[[list[Any]], Any]
) -> tuple[list[Any], Callable[[Any], Any]]:
    """The leaves of ``args`` that are differentiated, and ``rebuild(dyn)``: ``args`` with
    those leaves replaced by ``dyn`` (the others pass through)."""
    dyn_at = [i for i, leaf in enumerate(leaves) if is_dynamic(leaf)]

    def rebuild(dyn: Any) -> Any:
        full = list(leaves)
        for i, leaf in zip(dyn_at, dyn, strict=True):
            full[i] = leaf
        return unflatten(full)

    return [leaves[i] for i in dyn_at], rebuild


# --- JAX ----------------------------------------------------------------------------------------


def jax_argmin(
    fun: Callable[..., Any],
    x0: Any,
    args: Any = (),
    *,
    solve: str = "auto",
    cg_tol: float = 1e-10,
    cg_maxiter: int | None = None,
    return_result: bool = False,
    **minimize_kwargs: Any,
) -> Any:
    """The minimizer ``x* = argmin_x fun(x, *args)``, differentiable in ``args`` with JAX.

    The forward pass runs :func:`dict_minimize.minimize` (``jac='autodiff'``) on concrete
    values; ``jax.grad`` and ``jax.vjp`` of ``x*`` with respect to the array
    leaves of ``args`` use the implicit function theorem at ``x*`` (see
    [Differentiating through a solve](guide/implicit.md)): one linear solve with the Hessian of
    ``fun`` in ``x`` and one
    vector-Jacobian product, whatever the number of SciPy iterations. ``x0`` gets a zero
    gradient. Not traceable by ``jax.jit`` or ``jax.vmap`` (the solve needs concrete values):
    call it outside them; differentiating it eagerly works.

    Args:
        fun: ``fun(x, *args) -> value``, a JAX scalar, twice differentiable in ``x`` and once
            in ``x`` and ``args`` together.
        x0: the starting point, a dict (or nest, as for ``minimize``) of JAX arrays.
        args: extra positional arguments of ``fun``, a tuple of pytrees. Leaves that are
            floating-point arrays are differentiable; other leaves are passed through.
        solve: ``'dense'`` builds the Hessian from ``n`` products and solves exactly;
            ``'cg'`` runs conjugate gradients on Hessian-vector products; ``'auto'`` (the
            default) is dense up to 200 scalars in ``x``.
        cg_tol: relative residual at which conjugate gradients stop.
        cg_maxiter: conjugate-gradient iterations at most (default ``10 * n``, at most
            10,000).
        return_result: return ``(x_star, res)``, ``res`` the full
            :class:`~dict_minimize.OptimizeResult` of the forward solve.
        **minimize_kwargs: passed to :func:`dict_minimize.minimize` (``method``, ``tol``,
            ``options``, ``jit``...); bounds and constraints are refused.

    Returns:
        The solution, a dict like ``x0`` (or ``(x_star, res)``).

    Warns:
        ImplicitGradientWarning: when the gradient is computed, if the solve did not converge
            or the Hessian at ``x*`` is singular or not positive definite (or CG did not
            converge); the gradient computed is still returned.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from dict_minimize.jax_api import argmin
        >>> def f(x, t):  # minimum at x = 2 t
        ...     return jnp.sum((x["w"] - 2.0 * t) ** 2)
        >>> def loss(t):
        ...     return jnp.sum(argmin(f, {"w": jnp.zeros(2)}, (t,))["w"])
        >>> jax.grad(loss)(jnp.array([1.0, 3.0]))
        Array([2., 2.], dtype=float32)
    """
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    minimize_kwargs, args = start(solve, cg_tol, cg_maxiter, minimize_kwargs, args)
    use_jit = minimize_kwargs.get("jit") is not False
    leaves, treedef = jax.tree_util.tree_flatten(args)
    dyn_leaves, rebuild = split_dynamic(
        leaves, _jax_inexact, lambda full: jax.tree_util.tree_unflatten(treedef, full)
    )

    state: dict[str, Any] = {}

    def forward(x0_: Any, dyn: list[Any]) -> Any:
        traced = [leaf for leaf in jax.tree_util.tree_leaves((x0_, dyn)) if _is_tracer(leaf)]
        if traced:
            raise TypeError(
                "dict_minimize.jax_api.argmin cannot run under jax.jit, jax.vmap or another "
                "transformation that traces its inputs (the SciPy solve needs concrete "
                "values); call it outside the transformation (jax.grad is fine)"
            )
        res = minimize(fun, x0_, args=rebuild(dyn), **minimize_kwargs)
        state["res"] = res
        return res.x

    def grad_x(x: Any, dyn: list[Any]) -> Any:
        return jax.grad(lambda y: fun(y, *rebuild(dyn)))(x)

    @jax.custom_vjp
    def solution(x0_: Any, dyn: list[Any]) -> Any:
        return forward(x0_, dyn)

    def fwd(x0_: Any, dyn: list[Any]) -> tuple[Any, Any]:
        x = forward(x0_, dyn)
        return x, (x0_, x, dyn)

    def bwd(saved: Any, ct: Any) -> tuple[Any, Any]:
        x0_, x, dyn = saved
        converged_check(state["res"])
        flat_x, unravel = ravel_pytree(x)
        flat_ct, _ = ravel_pytree(ct)

        def hvp_(x_: Any, dyn_: list[Any], p: Any) -> Any:
            return jax.jvp(lambda y: grad_x(y, dyn_), (x_,), (p,))[1]

        hvp_c = jax.jit(hvp_) if use_jit else hvp_

        def hvp(p: np.ndarray) -> np.ndarray:
            p_tree = unravel(jnp.asarray(p, dtype=flat_x.dtype))
            return np.asarray(ravel_pytree(hvp_c(x, dyn, p_tree))[0], dtype=np.float64)

        w = solve_hessian(
            hvp,
            np.asarray(flat_ct, dtype=np.float64),
            solve=solve,
            cg_tol=cg_tol,
            cg_maxiter=cg_maxiter,
        )
        _, pull = jax.vjp(lambda d: grad_x(x, d), dyn)
        (ct_dyn,) = pull(unravel(jnp.asarray(w, dtype=flat_x.dtype)))
        ct_dyn = jax.tree_util.tree_map(lambda g: -g, ct_dyn)
        return jax.tree_util.tree_map(jnp.zeros_like, x0_), ct_dyn

    solution.defvjp(fwd, bwd)
    x_star = solution(x0, dyn_leaves)
    return (x_star, state["res"]) if return_result else x_star


def _jax_inexact(leaf: Any) -> bool:
    import jax
    import jax.numpy as jnp

    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        return bool(jnp.issubdtype(leaf.dtype, jnp.inexact))
    return False


def _is_tracer(leaf: Any) -> bool:
    import jax

    return isinstance(leaf, jax.core.Tracer)


# --- PyTorch --------------------------------------------------------------------------------------


def torch_argmin(
    fun: Callable[..., Any],
    x0: Any,
    args: Any = (),
    *,
    solve: str = "auto",
    cg_tol: float = 1e-10,
    cg_maxiter: int | None = None,
    return_result: bool = False,
    **minimize_kwargs: Any,
) -> Any:
    """The minimizer ``x* = argmin_x fun(x, *args)``, differentiable in ``args`` with autograd.

    The forward pass runs :func:`dict_minimize.minimize` (``jac='autodiff'``) on detached
    values; the result's tensors are outputs of a ``torch.autograd.Function`` whose backward
    uses the implicit function theorem at ``x*`` (see
    [Differentiating through a solve](guide/implicit.md)): one linear
    solve with the Hessian of ``fun`` in ``x`` (products by double backward) and one
    vector-Jacobian product, whatever the number of SciPy iterations. So
    ``loss(x_star).backward()`` fills ``.grad`` of the tensors in ``args`` that require grad.
    ``x0`` gets no gradient; the backward is not itself differentiable (no second derivatives
    through ``argmin``).

    Args:
        fun: ``fun(x, *args) -> value``, a 0-d tensor, twice differentiable in ``x`` and once
            in ``x`` and ``args`` together.
        x0: the starting point, a dict (or nest, as for ``minimize``) of tensors.
        args: extra positional arguments of ``fun``: tensors, or lists, tuples and dicts of
            them, to any depth; floating-point tensors that require grad are differentiated,
            everything else passes through.
        solve: ``'dense'`` builds the Hessian from ``n`` products and solves exactly;
            ``'cg'`` runs conjugate gradients on Hessian-vector products; ``'auto'`` (the
            default) is dense up to 200 scalars in ``x``.
        cg_tol: relative residual at which conjugate gradients stop.
        cg_maxiter: conjugate-gradient iterations at most (default ``10 * n``, at most
            10,000).
        return_result: return ``(x_star, res)``, ``res`` the full
            :class:`~dict_minimize.OptimizeResult` of the forward solve.
        **minimize_kwargs: passed to :func:`dict_minimize.minimize` (``method``, ``tol``,
            ``options``...); bounds and constraints are refused.

    Returns:
        The solution, a dict like ``x0`` (or ``(x_star, res)``).

    Warns:
        ImplicitGradientWarning: in ``backward``, if the solve did not converge or the
            Hessian at ``x*`` is singular or not positive definite (or CG did not converge);
            the gradient computed is still returned.

    Example:
        >>> import torch
        >>> from dict_minimize.torch_api import argmin
        >>> t = torch.tensor([1.0, 3.0], requires_grad=True)
        >>> def f(x, t):  # minimum at x = 2 t
        ...     return ((x["w"] - 2.0 * t) ** 2).sum()
        >>> x_star = argmin(f, {"w": torch.zeros(2)}, (t,))
        >>> x_star["w"].sum().backward()
        >>> t.grad
        tensor([2., 2.])
    """
    import torch

    minimize_kwargs, args = start(solve, cg_tol, cg_maxiter, minimize_kwargs, args)
    leaves, rebuild_args = flatten(args)
    dyn_inputs, rebuild = split_dynamic(
        leaves, lambda t: isinstance(t, torch.Tensor) and t.is_floating_point(), rebuild_args
    )
    detached = tuple(t.detach() for t in dyn_inputs)
    with torch.no_grad():
        x0_detached = _torch_detach(x0, torch)
    res = minimize(fun, x0_detached, args=rebuild(detached), **minimize_kwargs)
    if not (any(t.requires_grad for t in dyn_inputs) and torch.is_grad_enabled()):
        return (res.x, res) if return_result else res.x
    x_leaves, rebuild_x = flatten(res.x)

    def backward(needs: tuple[bool, ...], ct: tuple[Any, ...]) -> tuple[Any, ...]:
        converged_check(res)
        with torch.enable_grad():
            xs = [leaf.detach().requires_grad_(True) for leaf in x_leaves]
            thetas = [t.detach().requires_grad_(True) for t in detached]
            value = fun(rebuild_x(xs), *rebuild(tuple(thetas)))
            grads = torch.autograd.grad(value, xs, create_graph=True, allow_unused=True)
            g = [torch.zeros_like(x) if gi is None else gi for x, gi in zip(xs, grads, strict=True)]
            cts = [torch.zeros_like(x) if c is None else c for x, c in zip(xs, ct, strict=True)]
            w = solve_hessian(
                _torch_hvp(g, xs, torch),
                _torch_flat(cts),
                solve=solve,
                cg_tol=cg_tol,
                cg_maxiter=cg_maxiter,
            )
            return _torch_pull(g, thetas, _torch_unflat(w, xs, torch), needs, torch)

    class _Solution(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *dyn: Any) -> Any:
            return tuple(leaf.detach().clone() for leaf in x_leaves)

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx: Any, *ct: Any) -> Any:
            return backward(tuple(ctx.needs_input_grad), ct)

    x_star = rebuild_x(list(_Solution.apply(*dyn_inputs)))
    return (x_star, res) if return_result else x_star


def _torch_hvp(g: list[Any], xs: list[Any], torch: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Products with the Hessian of ``fun`` in ``x``, by double backward through the gradient
    ``g`` (built with ``create_graph=True``); entries whose gradient does not depend on ``x``
    have no curvature."""
    live = [i for i, gi in enumerate(g) if gi.requires_grad]

    def hvp(p: np.ndarray) -> np.ndarray:
        ps = _torch_unflat(p, xs, torch)
        out = [torch.zeros_like(x) for x in xs]
        if live:
            prods = torch.autograd.grad(
                [g[i] for i in live],
                xs,
                grad_outputs=[ps[i] for i in live],
                retain_graph=True,
                allow_unused=True,
            )
            out = [o if h is None else h for o, h in zip(out, prods, strict=True)]
        return _torch_flat(out)

    return hvp


def _torch_pull(
    g: list[Any], thetas: list[Any], ws: list[Any], needs: tuple[bool, ...], torch: Any
) -> tuple[Any, ...]:
    """``-d/dtheta <grad_x f, w>`` for the ``args`` tensors whose gradient is wanted (None
    for the others), zeros where ``f`` does not depend on them."""
    live = [i for i, gi in enumerate(g) if gi.requires_grad]
    wants = [i for i in range(len(thetas)) if needs[i]]
    out: list[Any] = [None] * len(thetas)
    if live and wants:
        pulled = torch.autograd.grad(
            [g[i] for i in live],
            [thetas[i] for i in wants],
            grad_outputs=[ws[i] for i in live],
            allow_unused=True,
        )
        for i, d in zip(wants, pulled, strict=True):
            out[i] = None if d is None else -d
    for i in wants:
        if out[i] is None:
            out[i] = torch.zeros_like(thetas[i])
    return tuple(out)


def _torch_detach(tree: Any, torch: Any) -> Any:
    leaves, build = flatten(tree)
    return build([leaf.detach() if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves])


def _torch_flat(tensors: list[Any]) -> np.ndarray:
    if not tensors:
        return np.zeros(0)
    parts = [t.detach().reshape(-1).double().cpu().numpy() for t in tensors]
    return np.concatenate(parts)


def _torch_unflat(flat: np.ndarray, like: list[Any], torch: Any) -> list[Any]:
    out, start = [], 0
    for t in like:
        size = t.numel()
        piece = torch.as_tensor(flat[start : start + size].reshape(tuple(t.shape)))
        out.append(piece.to(dtype=t.dtype, device=t.device))
        start += size
    return out
