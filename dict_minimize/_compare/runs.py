"""The loops behind :func:`dict_minimize.compare`: one per kind of optimizer.

SciPy's methods run through :func:`dict_minimize.minimize` with a budget callback; the
frameworks' optimizers (``torch.optim``, optax, Keras) run in a loop of their own on copies of
``x0``, one gradient evaluation per step, recording one trace row per step.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dict_minimize._errors import type_name
from dict_minimize._problem.trace import Trace
from dict_minimize._solvers.minimize import minimize
from dict_minimize._solvers.minimize_steps import GRADIENT_FREE, _wants_result
from dict_minimize._structure.layout import Layout, values_by_key

#: SciPy's own cap on evaluations per method (the option and what it counts); "maxiter" elsewhere
_CAPS = {
    "l-bfgs-b": "maxfun",
    "tnc": "maxfun",
    "nelder-mead": "maxfev",
    "powell": "maxfev",
    "cobyqa": "maxfev",
    "cobyla": "maxiter",  # COBYLA's maxiter is its number of function evaluations
}


class _Spent(Exception):
    """The budget ran out inside a step (an optimizer that evaluates several times per step)."""


class _NotFinite(Exception):
    """A row's value or gradient is not finite: the run ends there."""


@dataclass(frozen=True)
class _Plan:
    """One optimizer of a comparison, parsed: what runs it and with which settings."""

    name: str
    kind: str  # "scipy", "torch", "optax", "keras"
    target: Any  # the method name (lower case), the optimizer class, the GradientTransformation
    settings: dict[str, Any] = field(default_factory=dict)  # minimize keywords / hyperparameters


@dataclass
class _Problem:
    """What every run of one comparison shares."""

    fun: Callable
    x0: Any
    args: tuple
    layout: Layout
    leaves: list[Any]
    framework: str
    pair: bool  # fun returns (value, grad_dict)
    budget: int
    keep_x: bool
    lb_dict: Any
    ub_dict: Any
    #: per-leaf float64 bounds for the framework optimizers' projection, or None
    bounds: list[tuple[np.ndarray, np.ndarray]] | None
    cache: dict[str, Any] = field(default_factory=dict)  # compiled JAX functions, built once


class _Recorder:
    """The rows of one framework optimizer's run."""

    def __init__(self, name: str, keep_x: bool) -> None:
        self.trace = Trace(label=name, x=[] if keep_x else None)
        self.keep_x = keep_x
        self.t0 = time.perf_counter()

    def add(
        self, f: float, grad_norm: float, nfev: int, njev: int, nit: int, x: Callable[[], Any]
    ) -> None:
        self.trace.append(
            f,
            grad_norm=grad_norm,
            nfev=nfev,
            njev=njev,
            time=time.perf_counter() - self.t0,
            nit=nit,
            x=x() if self.keep_x else None,
        )


# -- SciPy's methods -------------------------------------------------------------------------


def _budget_callback(count: str, budget: int, user: Callable | None) -> Callable:
    """SciPy's per-iteration callback: the user's, then a stop once the budget is spent."""
    wants = user is not None and _wants_result(user)

    def stop(intermediate_result: Any) -> Any:
        out = None
        if user is not None:
            out = (
                user(intermediate_result=intermediate_result)
                if wants
                else user(intermediate_result.x)
            )
        if intermediate_result[count] >= budget:
            raise StopIteration
        return out

    return stop


def _prefix(trace: Trace, rows: int, label: str) -> Trace:
    """The first ``rows`` rows of ``trace``, labelled."""
    x = trace.x
    return Trace(
        fun=trace.fun[:rows],
        grad_norm=trace.grad_norm[:rows],
        nfev=trace.nfev[:rows],
        njev=trace.njev[:rows],
        time=trace.time[:rows],
        nit=trace.nit[:rows],
        x=None if x is None else x[:rows],
        label=label,
    )


def _run_scipy(plan: _Plan, prob: _Problem) -> Trace:
    meth = plan.target
    settings = dict(plan.settings)
    count = "nfev" if meth in GRADIENT_FREE else "njev"
    callback = _budget_callback(count, prob.budget, settings.pop("callback", None))
    options = dict(settings.pop("options", None) or {})
    options.setdefault(_CAPS.get(meth, "maxiter"), prob.budget)
    res = minimize(
        prob.fun,
        prob.x0,
        method=meth,
        jac=True if prob.pair else "autodiff",
        args=prob.args,
        lb_dict=prob.lb_dict,
        ub_dict=prob.ub_dict,
        trace="x" if prob.keep_x else True,
        callback=callback,
        options=options,
        **settings,
    )
    full = res.trace
    counts = getattr(full, count)
    rows = int(np.searchsorted(counts, prob.budget, side="right"))  # counts never decrease
    out = _prefix(full, rows, plan.name)
    out.result = res
    return out


# -- PyTorch ---------------------------------------------------------------------------------


def _run_torch(plan: _Plan, prob: _Problem) -> Trace:
    import torch

    layout, budget = prob.layout, prob.budget
    params = [leaf.detach().clone().requires_grad_(True) for leaf in prob.leaves]
    lows_highs = None
    if prob.bounds is not None:
        lows_highs = [
            (torch.as_tensor(lo).to(p), torch.as_tensor(hi).to(p))
            for p, (lo, hi) in zip(params, prob.bounds, strict=True)
        ]

    def project() -> None:
        if lows_highs is not None:
            with torch.no_grad():
                for p, (lo, hi) in zip(params, lows_highs, strict=True):
                    p.clamp_(lo, hi)

    project()
    x_dict = layout.build(params)
    settings = dict(plan.settings)
    if issubclass(plan.target, torch.optim.LBFGS):
        settings.setdefault("max_iter", 1)  # one iteration, one evaluation, per step
    opt = _construct(plan, lambda: plan.target(params, **settings))
    max_evals = [g.get("max_eval") for g in opt.param_groups]
    rec = _Recorder(plan.name, prob.keep_x)
    saved = [p.detach().clone() for p in params]  # the step's start, should the budget cut it
    evals, steps, first = 0, 0, True

    def snapshot() -> Any:
        return layout.build([p.detach().clone() for p in params])

    def closure() -> Any:
        nonlocal evals, first
        if evals >= budget:
            raise _Spent
        opt.zero_grad()
        if prob.pair:
            value, grads = prob.fun(x_dict, *prob.args)
            for p, g in zip(params, values_by_key(grads, layout), strict=True):
                p.grad = torch.as_tensor(g).detach().to(p).clone()
            loss = value
        else:
            loss = prob.fun(x_dict, *prob.args)
            if not isinstance(loss, torch.Tensor):
                raise TypeError(
                    f"optimizer {plan.name!r}: fun returned a {type_name(loss)}; with "
                    "jac='autodiff' it must return a 0-d torch.Tensor computed from x_dict "
                    "(or return (value, grad_dict) and pass jac=True)"
                )
            loss.backward()
        evals += 1
        if first:  # the value and gradient at the step's start: a row
            first = False
            f = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
            norm = _torch_norm(params)
            rec.add(f, norm, evals, evals, steps, snapshot)
            if not (math.isfinite(f) and math.isfinite(norm)):
                raise _NotFinite
        return loss

    while evals < budget:
        first = True
        for group, cap in zip(opt.param_groups, max_evals, strict=True):
            if cap is not None:  # torch.optim.LBFGS: never plan past the budget
                group["max_eval"] = min(cap, budget - evals)
        with torch.no_grad():
            for s, p in zip(saved, params, strict=True):
                s.copy_(p)
        try:
            opt.step(closure)
        except _NotFinite:
            return rec.trace
        except _Spent:  # a line search ran past the budget: undo the unfinished step
            with torch.no_grad():
                for s, p in zip(saved, params, strict=True):
                    p.copy_(s)
            break
        steps += 1
        project()
    if prob.pair:
        final = prob.fun(x_dict, *prob.args)[0]
    else:
        with torch.no_grad():
            final = prob.fun(x_dict, *prob.args)
    if isinstance(final, torch.Tensor):
        final = final.detach()
    rec.add(float(final), math.nan, evals + 1, evals, steps, snapshot)
    return rec.trace


def _torch_norm(params: list[Any]) -> float:
    import torch

    return math.hypot(  # hypot: no overflow where the squares would overflow
        *(
            float(torch.linalg.vector_norm(p.grad.detach(), dtype=torch.float64))
            for p in params
            if p.grad is not None
        )
    )


def _itself(value: Any) -> Any:
    return value


# -- JAX and optax ---------------------------------------------------------------------------


def _jax_functions(prob: _Problem) -> tuple[Callable, Callable, Callable]:
    """(value and gradient, value, gradient norm) of fun, compiled once per comparison."""
    cached = prob.cache.get("jax")
    if cached is not None:
        return cached
    import jax
    import jax.numpy as jnp

    fun, args, layout = prob.fun, prob.args, prob.layout

    def objective(p: Any) -> Any:
        return fun(p, *args)

    vg: Callable
    value: Callable
    if prob.pair:

        def vg(p: Any) -> Any:
            v, g = fun(p, *args)
            return v, layout.build(values_by_key(g, layout))

        def value(p: Any) -> Any:
            return fun(p, *args)[0]
    else:
        vg = jax.jit(jax.value_and_grad(objective))
        value = jax.jit(objective)

    @jax.jit
    def norm(g: Any) -> Any:
        leaves = jax.tree_util.tree_leaves(g)
        return jnp.sqrt(sum(jnp.sum(jnp.square(leaf.astype(jnp.float32))) for leaf in leaves))

    prob.cache["jax"] = vg, value, norm
    return vg, value, norm


def _extra_args(tx: Any) -> bool:
    """Whether ``tx.update`` takes optax's extra keywords (``value``, ``grad``, ``value_fn``)."""
    optax = sys.modules.get("optax")
    return optax is not None and isinstance(tx, optax.GradientTransformationExtraArgs)


def _line_search_steps(state: Any) -> list[Any]:
    """The ``num_linesearch_steps`` leaves of an optax state: one per line search in it."""
    import jax

    return [
        leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]
        if path and getattr(path[-1], "name", None) == "num_linesearch_steps"
    ]


def _stored(state: Any, name: str) -> Any:
    """The line search's ``value`` or ``grad`` kept in the state (as
    ``optax.value_and_grad_from_state`` reads it); None when absent or ambiguous."""
    import optax

    try:
        return optax.tree.get(state, name)
    except KeyError:  # several: which one is the line search's is not ours to guess
        return None


def _run_optax(plan: _Plan, prob: _Problem) -> Trace:
    import jax
    import jax.numpy as jnp

    layout, budget, tx = prob.layout, prob.budget, plan.target
    vg, value, norm = _jax_functions(prob)
    params = layout.build(list(prob.leaves))  # JAX arrays are immutable: x0 cannot change
    extra = _extra_args(tx)

    try:
        from optax import apply_updates
    except ImportError:  # an optax-shaped transformation from elsewhere

        def apply_updates(p: Any, updates: Any) -> Any:
            return jax.tree_util.tree_map(
                lambda a, u: jnp.asarray(a + u).astype(jnp.asarray(a).dtype), p, updates
            )

    @jax.jit
    def update(grads: Any, state: Any, p: Any, f: Any) -> Any:
        if extra:  # what optax.contrib's and the line searches' transformations may need
            updates, state = tx.update(grads, state, p, value=f, grad=grads, value_fn=value)
        else:
            updates, state = tx.update(grads, state, p)
        return apply_updates(p, updates), state

    def project(p: Any) -> Any:
        return p

    if prob.bounds is not None:
        los = layout.build(
            [
                jnp.asarray(lo, leaf.dtype)
                for leaf, (lo, _) in zip(prob.leaves, prob.bounds, strict=True)
            ]
        )
        his = layout.build(
            [
                jnp.asarray(hi, leaf.dtype)
                for leaf, (_, hi) in zip(prob.leaves, prob.bounds, strict=True)
            ]
        )

        @jax.jit
        def project(p: Any) -> Any:
            return jax.tree_util.tree_map(
                lambda a, lo, hi: jnp.minimum(jnp.maximum(a, lo), hi), p, los, his
            )

        params = project(params)
    state = _construct(plan, lambda: tx.init(params))
    if extra and _line_search_steps(state):
        _check_line_search(plan, prob)
        return _run_optax_line_search(plan, prob, params, state, update)
    rec = _Recorder(plan.name, prob.keep_x)
    for k in range(budget):
        f, grads = vg(params)
        f_host, g_norm = float(f), float(norm(grads))
        rec.add(f_host, g_norm, k + 1, k + 1, k, functools.partial(_itself, params))
        if not (math.isfinite(f_host) and math.isfinite(g_norm)):
            return rec.trace
        params, state = update(grads, state, params, f)
        params = project(params)
    rec.add(float(value(params)), math.nan, budget + 1, budget, budget, lambda: params)
    return rec.trace


def _check_line_search(plan: _Plan, prob: _Problem) -> None:
    if prob.pair:
        raise TypeError(
            f"optimizer {plan.name!r} runs a line search (optax.lbfgs, "
            "optax.scale_by_zoom_linesearch, ...), which differentiates fun itself with "
            "jax.value_and_grad; with jac=True fun returns its own gradient: give compare a fun "
            "that returns the value only (jac=None), or use 'L-BFGS-B'"
        )
    if prob.bounds is not None:
        raise TypeError(
            f"optimizer {plan.name!r} runs a line search (optax.lbfgs, "
            "optax.scale_by_zoom_linesearch, ...), which cannot be projected onto lb_dict/"
            "ub_dict (its stored value and gradient would belong to the point before the "
            "clip): compare it without bounds, or use 'L-BFGS-B'"
        )


def _run_optax_line_search(
    plan: _Plan, prob: _Problem, params: Any, state: Any, update: Callable
) -> Trace:
    """optax's documented loop for a line search (``optax.lbfgs()``, ``scale_by_zoom_linesearch``,
    ``scale_by_backtracking_linesearch``): each update gets ``value``, ``grad`` and
    ``value_fn``, and the next step reuses the value and gradient the line search left in the
    state (``optax.value_and_grad_from_state``). Every evaluation of the line search counts:
    ``num_linesearch_steps`` of them per step (gradient evaluations when the line search keeps
    the gradient, function evaluations otherwise, then one gradient evaluation)."""
    vg, _, norm = _jax_functions(prob)
    budget = prob.budget
    rec = _Recorder(plan.name, prob.keep_x)
    f, grads = vg(params)
    nfev = njev = 1
    k = 0
    while True:
        f_host, g_norm = float(f), float(norm(grads))
        rec.add(f_host, g_norm, nfev, njev, k, functools.partial(_itself, params))
        if not (math.isfinite(f_host) and math.isfinite(g_norm)) or njev >= budget:
            return rec.trace
        if k >= budget:  # a line search that reports no evaluations: never loop for ever
            return rec.trace
        new_params, new_state = update(grads, state, params, f)
        steps = sum(int(n) for n in _line_search_steps(new_state))
        f_new, g_new = _stored(new_state, "value"), _stored(new_state, "grad")
        reuse = g_new is not None and f_new is not None and math.isfinite(float(f_new))
        cost = steps if reuse else (0 if g_new is None else steps) + 1
        if njev + cost > budget:  # the line search ran past the budget: the step is undone
            return rec.trace
        params, state, k = new_params, new_state, k + 1
        nfev += steps
        if reuse:
            njev += steps
            f, grads = f_new, g_new
        else:
            njev += cost - 1
            f, grads = vg(params)
            nfev, njev = nfev + 1, njev + 1


# -- TensorFlow and Keras --------------------------------------------------------------------


def _run_keras(plan: _Plan, prob: _Problem) -> Trace:
    import tensorflow as tf

    layout, budget = prob.layout, prob.budget
    variables = [tf.Variable(leaf) for leaf in prob.leaves]  # copies: x0 is only read
    clips = None
    if prob.bounds is not None:
        clips = [
            (tf.constant(lo, v.dtype), tf.constant(hi, v.dtype))
            for v, (lo, hi) in zip(variables, prob.bounds, strict=True)
        ]

    def project() -> None:
        if clips is not None:
            for v, (lo, hi) in zip(variables, clips, strict=True):
                v.assign(tf.clip_by_value(v, lo, hi))

    project()
    x_dict = layout.build(variables)
    opt = _construct(plan, lambda: plan.target(**plan.settings))
    rec = _Recorder(plan.name, prob.keep_x)

    def snapshot() -> Any:
        return layout.build([tf.identity(v) for v in variables])

    for k in range(budget):
        if prob.pair:
            loss, g = prob.fun(x_dict, *prob.args)
            grads = [tf.convert_to_tensor(t) for t in values_by_key(g, layout)]
        else:
            with tf.GradientTape() as tape:
                loss = prob.fun(x_dict, *prob.args)
            grads = tape.gradient(loss, variables)
        grads = [
            tf.zeros_like(v) if t is None else t for v, t in zip(variables, grads, strict=True)
        ]
        f = float(loss)
        g_norm = math.hypot(*(float(tf.norm(tf.cast(t, tf.float64))) for t in grads))
        rec.add(f, g_norm, k + 1, k + 1, k, snapshot)
        if not (math.isfinite(f) and math.isfinite(g_norm)):
            return rec.trace
        opt.apply_gradients(zip(grads, variables, strict=True))
        project()
    final = prob.fun(x_dict, *prob.args)
    final = final[0] if prob.pair else final
    rec.add(float(final), math.nan, budget + 1, budget, budget, snapshot)
    return rec.trace


def _construct(plan: _Plan, build: Callable[[], Any]) -> Any:
    """Build the optimizer (or its state), naming the optimizer when its settings are wrong."""
    try:
        return build()
    except TypeError as exc:
        what = getattr(plan.target, "__name__", type_name(plan.target))
        raise TypeError(
            f"optimizer {plan.name!r}: {what} with hyperparameters {plan.settings!r} failed: {exc}"
        ) from exc


_RUNNERS: dict[str, Callable[[_Plan, _Problem], Trace]] = {
    "scipy": _run_scipy,
    "torch": _run_torch,
    "optax": _run_optax,
    "keras": _run_keras,
}
