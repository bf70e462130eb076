"""SciPy's methods against the frameworks' own optimizers, at equal gradient budgets.

:func:`compare` runs every optimizer it is given on one objective, from one start point, with
one budget of gradient evaluations, and returns a :class:`~dict_minimize.Trace` per optimizer:
SciPy's methods through :func:`dict_minimize.minimize` (``trace=True``), and the frameworks'
first-order optimizers (``torch.optim``, optax, Keras) in a loop of their own, on copies of
``x0``. :func:`compare_table` prints the traces side by side.

Nothing here imports a framework at module import: PyTorch, JAX, optax or TensorFlow is
touched only when ``x0`` or an optimizer comes from it, and an optimizer is recognised by
looking in ``sys.modules`` (a framework never imported cannot have made it).
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dict_minimize._compare.runs import _RUNNERS, _Plan, _Problem
from dict_minimize._errors import class_name, type_name
from dict_minimize._problem.bounds import make_bounds
from dict_minimize._problem.trace import Trace, as_trace
from dict_minimize._solvers.minimize import _prepare_x0, minimize
from dict_minimize._solvers.minimize_steps import METHODS

__all__ = ["KEEP_X_MAX", "compare", "compare_table"]

#: ``keep_x=None`` keeps each row's point when ``x0`` has at most this many scalars
KEEP_X_MAX = 100

#: the minimize keywords compare sets itself
_SET_BY_COMPARE = frozenset({"fun", "x0", "method", "jac", "args", "lb_dict", "ub_dict", "trace"})
_FRAMEWORK = {"numpy": "NumPy", "torch": "PyTorch", "jax": "JAX", "tensorflow": "TensorFlow"}
_KIND = {
    "torch": "a torch.optim optimizer",
    "optax": "an optax optimizer",
    "keras": "a Keras optimizer",
}
_KIND_FRAMEWORK = {"torch": "torch", "optax": "jax", "keras": "tensorflow"}
_SUGGEST = {
    "torch": "a torch.optim.Optimizer class with its hyperparameters, e.g. "
    "(torch.optim.Adam, {'lr': 0.1})",
    "jax": "an optax optimizer, e.g. (optax.adam, {'learning_rate': 0.1}) or optax.adam(0.1)",
    "tensorflow": "a Keras optimizer class with its hyperparameters, e.g. "
    "(keras.optimizers.Adam, {'learning_rate': 0.1})",
}
_ACCEPTED = (
    "a SciPy method name (one of {methods}) or (method, {{minimize keywords}}); a "
    "torch.optim.Optimizer class, alone or as (class, {{hyperparameters}}); an optax optimizer "
    "factory with its hyperparameters, e.g. (optax.adam, {{'learning_rate': 0.1}}), or an "
    "optax GradientTransformation; a Keras optimizer class with its hyperparameters, e.g. "
    "(keras.optimizers.Adam, {{'learning_rate': 0.1}})"
)


# -- parsing the optimizers ------------------------------------------------------------------


def _check_budget(max_grad_evals: Any) -> int:
    if isinstance(max_grad_evals, bool) or not isinstance(max_grad_evals, (int, np.integer)):
        raise TypeError(
            f"max_grad_evals must be a positive int (gradient evaluations per optimizer); got a "
            f"{type_name(max_grad_evals)}"
        )
    if max_grad_evals < 1:
        raise ValueError(
            f"max_grad_evals must be a positive int (gradient evaluations per optimizer); got "
            f"{int(max_grad_evals)}"
        )
    return int(max_grad_evals)


def _check_jac(jac: Any, framework: str) -> bool:
    """True when fun returns (value, grad_dict); False for a value-only fun (autodiff)."""
    if jac is None:
        return framework == "numpy"
    if jac is True:
        return True
    if isinstance(jac, str) and jac == "autodiff":
        if framework == "numpy":
            raise ValueError(
                "jac='autodiff' needs x0 in a framework with automatic differentiation "
                "(PyTorch, JAX, TensorFlow), and x0 holds NumPy arrays: return (value, "
                "grad_dict) from fun and leave jac=None (or pass jac=True)"
            )
        return False
    raise ValueError(
        "jac must be None (autodiff for PyTorch/JAX/TensorFlow x0, (value, grad_dict) for "
        f"NumPy x0), 'autodiff' or True; got {jac!r}"
    )


def _check_keep_x(keep_x: Any, n: int) -> bool:
    if keep_x is None:
        return n <= KEEP_X_MAX
    if isinstance(keep_x, bool):
        return keep_x
    raise TypeError(
        f"keep_x must be None (keep x when x0 has at most {KEEP_X_MAX} scalars), True or False; "
        f"got a {type_name(keep_x)}"
    )


def _framework_kind(head: Any) -> str | None:
    """'torch', 'keras' or 'optax' for what a framework optimizer can be given as; else None."""
    torch = sys.modules.get("torch")
    keras = sys.modules.get("keras")
    if isinstance(head, type):
        if torch is not None and issubclass(head, torch.optim.Optimizer):
            return "torch"
        if keras is not None and issubclass(head, keras.optimizers.Optimizer):
            return "keras"
        return None
    if callable(getattr(head, "init", None)) and callable(getattr(head, "update", None)):
        return "optax"  # an optax GradientTransformation (or anything shaped like one)
    if torch is not None and isinstance(head, torch.optim.Optimizer):
        return "torch-instance"
    if keras is not None and isinstance(head, keras.optimizers.Optimizer):
        return "keras-instance"
    if callable(head):
        return "optax-factory"
    return None


def _mismatch(name: str, kind: str, framework: str) -> TypeError:
    if framework == "numpy":
        other = (
            "NumPy has no automatic differentiation, so no framework optimizer applies: give "
            "SciPy method names only, or x0 in PyTorch, JAX or TensorFlow for their optimizers"
        )
    else:
        other = f"use {_SUGGEST[framework]}, or a SciPy method name such as 'L-BFGS-B'"
    needs = _FRAMEWORK[_KIND_FRAMEWORK[kind]]
    return TypeError(
        f"optimizer {name!r} is {_KIND[kind]}, which needs x0 in {needs}; x0 holds "
        f"{_FRAMEWORK[framework]} tensors: {other}"
    )


def _parse_scipy(name: str, method: str, settings: dict[str, Any]) -> _Plan:
    meth = method.lower()
    if meth not in METHODS:
        raise ValueError(
            f"optimizer {name!r}: unknown SciPy method {method!r}; expected one of "
            f"{', '.join(METHODS)} (any case)"
        )
    known = set(inspect.signature(minimize).parameters)
    for key in settings:
        if key in _SET_BY_COMPARE:
            raise ValueError(
                f"optimizer {name!r}: {key!r} is set by compare for every optimizer; pass "
                f"{'it to compare' if key in ('jac', 'args', 'lb_dict', 'ub_dict') else 'it'} "
                "once, not per optimizer"
            )
        if key not in known:
            raise TypeError(
                f"optimizer {name!r}: {key!r} is not a keyword of dict_minimize.minimize; "
                "expected some of " + ", ".join(sorted(known - _SET_BY_COMPARE))
            )
    if settings.get("options") is not None and not isinstance(settings["options"], Mapping):
        raise TypeError(
            f"optimizer {name!r}: options must be a dict of method options; got a "
            f"{type_name(settings['options'])}"
        )
    if settings.get("callback") is not None and not callable(settings["callback"]):
        raise TypeError(
            f"optimizer {name!r}: callback must be callable; got a "
            f"{type_name(settings['callback'])}"
        )
    return _Plan(name, "scipy", meth, settings)


def _parse(name: Any, spec: Any, framework: str) -> _Plan:
    if not isinstance(name, str):
        raise TypeError(f"optimizer names must be strings; got {name!r} (a {type_name(name)})")
    head, settings = spec, None
    # an optax GradientTransformation is a NamedTuple (init, update): not (optimizer, settings)
    if isinstance(spec, (tuple, list)) and _framework_kind(spec) != "optax":
        if len(spec) != 2:
            raise TypeError(
                f"optimizer {name!r} is a {type_name(spec)} of {len(spec)} items; expected "
                "(optimizer, {settings}): " + _ACCEPTED.format(methods=", ".join(METHODS))
            )
        head, settings = spec
        if not isinstance(settings, Mapping):
            what = "minimize keywords" if isinstance(head, str) else "hyperparameters"
            raise TypeError(
                f"optimizer {name!r}: the {what} must be a dict, e.g. "
                f"{'(method, {options: {...}})' if isinstance(head, str) else '(cls, {lr: 0.1})'}"
                f"; got a {type_name(settings)}"
            )
        for key in settings:
            if not isinstance(key, str):
                raise TypeError(f"optimizer {name!r}: setting names must be strings; got {key!r}")
    settings = dict(settings or {})
    if isinstance(head, str):
        return _parse_scipy(name, head, settings)
    kind = _framework_kind(head)
    if kind in ("torch-instance", "keras-instance"):
        raise TypeError(
            f"optimizer {name!r} is an optimizer already built ({type_name(head)}); pass its "
            f"class and hyperparameters, e.g. ({class_name(type(head))}, {{...}}): compare builds "
            "a fresh optimizer over a copy of x0 for the run"
        )
    if kind is None:
        raise TypeError(
            f"optimizer {name!r} is a {type_name(head)}; expected "
            + _ACCEPTED.format(methods=", ".join(METHODS))
        )
    base = "optax" if kind == "optax-factory" else kind
    if _KIND_FRAMEWORK[base] != framework:
        raise _mismatch(name, base, framework)
    if kind == "optax":
        if settings:
            raise TypeError(
                f"optimizer {name!r} is an optax GradientTransformation already built, which "
                "takes no hyperparameters; pass the factory instead, e.g. (optax.adam, "
                "{'learning_rate': 0.1})"
            )
        return _Plan(name, "optax", head)
    if kind == "optax-factory":
        try:
            built = head(**settings)
        except TypeError as exc:
            raise TypeError(
                f"optimizer {name!r}: {getattr(head, '__name__', head)}(**{settings!r}) "
                f"failed: {exc}"
            ) from exc
        if _framework_kind(built) != "optax":
            raise TypeError(
                f"optimizer {name!r}: a callable is taken as an optax optimizer factory "
                f"(optax.adam), which must return a GradientTransformation; "
                f"{getattr(head, '__name__', head)}(**{settings!r}) returned a "
                f"{type_name(built)}. Expected " + _ACCEPTED.format(methods=", ".join(METHODS))
            )
        return _Plan(name, "optax", built, settings)
    return _Plan(name, kind, head, settings)


# -- the public functions --------------------------------------------------------------------


def compare(
    fun: Callable,
    x0: Mapping[Any, Any],
    optimizers: Mapping[str, Any],
    *,
    max_grad_evals: int,
    args: Any = (),
    lb_dict: Mapping[Any, Any] | None = None,
    ub_dict: Mapping[Any, Any] | None = None,
    keep_x: bool | None = None,
    jac: bool | str | None = None,
) -> dict[str, Trace]:
    """Run SciPy's methods and the frameworks' optimizers on one objective, one budget each.

    Every optimizer starts from ``x0`` and may spend ``max_grad_evals`` gradient evaluations;
    each run gets a :class:`~dict_minimize.Trace` (one row per iteration, the start point as
    row 0) labelled with its name, so that runs compare by the evaluations they cost.

    **SciPy's methods** run through :func:`dict_minimize.minimize` (``trace=True``) with a
    callback that stops the run at the first iteration whose count of gradient evaluations
    (``njev``; for the gradient-free Nelder-Mead, Powell, COBYLA and COBYQA: function
    evaluations, ``nfev``) reaches the budget, and SciPy's own cap where the method has one
    (L-BFGS-B's and TNC's ``maxfun``, ``maxfev``, else ``maxiter``, unless given). An
    iteration may overrun the budget in its line search: the trace keeps only the rows within
    the budget, and ``trace.result`` is the ``OptimizeResult`` as SciPy returned it. Hessians
    and Hessian-vector products (Newton-CG, the trust-region methods) are not counted.

    **Framework optimizers** take one step per gradient evaluation, on copies of ``x0``
    (``x0`` is never modified): PyTorch tensors cloned as leaves that require grad
    (``loss.backward()``), JAX arrays with ``jax.value_and_grad(fun)`` compiled once by
    ``jax.jit`` (and the optimizer's update compiled too), TensorFlow ``tf.Variable``\\ s and a
    ``GradientTape``. Row ``k`` is the point after ``k`` steps: its value ``f(x_k)`` and the
    norm of its gradient come from the evaluation that the next step uses, so row ``k`` has
    ``njev = nfev = k + 1``; the point after the last step gets one value-only evaluation
    (``njev = max_grad_evals``, ``nfev`` one more, ``grad_norm`` NaN): ``max_grad_evals + 1``
    rows in all. ``torch.optim.LBFGS`` runs with ``max_iter=1`` per step unless given; every
    call of its closure counts as one gradient evaluation, row ``k`` is the first call of
    step ``k``, and a step its line search would take past the budget is undone. A value or
    gradient that is not finite (Adam diverging) is recorded as it is, and that run ends
    there. An optax transformation with a line search (``optax.lbfgs()``,
    ``scale_by_zoom_linesearch``, ``scale_by_backtracking_linesearch``) runs optax's documented
    loop: ``update`` gets ``value``, ``grad`` and ``value_fn``, the next step reuses the value
    and gradient kept in its state, every evaluation of the line search counts (row ``k``'s
    ``njev`` is the evaluations so far), a step that would pass the budget is dropped, and no
    value-only row ends the run; it needs a ``fun`` JAX differentiates and no bounds.
    With bounds, a framework optimizer is projected: each entry is clipped into its
    bounds at the start and after every step.

    Args:
        fun: the objective, ``fun(x_dict, *args)``: with ``x0`` in PyTorch, JAX or
            TensorFlow, it returns the value only, a 0-d tensor of that framework (as for
            ``minimize(..., jac="autodiff")``); with NumPy ``x0``, ``(value, grad_dict)``.
        x0: the start point, a dict of tensors of one framework (as for ``minimize``).
        optimizers: name -> optimizer, run in this order. An optimizer is one of:
            a SciPy method name (any of :data:`dict_minimize.METHODS`, any case), or
            ``(method, {keywords for minimize})`` such as ``("L-BFGS-B", {"options":
            {"maxcor": 5}})``; a ``torch.optim.Optimizer`` subclass, alone or as ``(cls,
            {hyperparameters})`` such as ``(torch.optim.Adam, {"lr": 0.1})``; an optax
            factory with its hyperparameters, ``(optax.adam, {"learning_rate": 0.1})``, or a
            built ``optax.GradientTransformation`` (line searches included: ``optax.lbfgs()``);
            a Keras optimizer class with its
            hyperparameters, ``(keras.optimizers.Adam, {"learning_rate": 0.1})``. A
            framework optimizer needs ``x0`` in its framework.
        max_grad_evals: the budget of gradient evaluations per optimizer, a positive int.
        args: extra positional arguments for ``fun``.
        lb_dict: lower bounds per key, as for ``minimize`` (SciPy's bounded methods honour
            them; framework optimizers are projected onto them).
        ub_dict: upper bounds, the same way.
        keep_x: keep each row's point (a dict like ``x0``, copied) in the trace, for path
            plots; ``None`` keeps it when ``x0`` has at most 100 scalars.
        jac: ``None`` picks from ``x0``: ``"autodiff"`` for PyTorch, JAX and TensorFlow,
            ``True`` (fun returns ``(value, grad_dict)``) for NumPy; pass ``True`` for a
            framework objective that computes its own gradient dict.

    Returns:
        dict[str, Trace]: one trace per optimizer, in the order of ``optimizers``, each
            ``label``-ed with its name; ``trace.result`` is SciPy's result for SciPy
            methods, None for framework optimizers.

    Raises:
        TypeError: for an optimizer of a kind not listed above, one from another framework
            than ``x0``'s, hyperparameters that are not a dict (or that the optimizer
            rejects), or a budget that is not an int; the message names the optimizer.
        ValueError: for an empty ``optimizers``, an unknown method name, a budget below 1.
        Exception: what ``fun`` raises propagates, with a note naming the optimizer.

    Example:
        >>> from dict_minimize._compare.compare import compare
        >>> from dict_minimize.testfunctions import rosenbrock
        >>> fn = rosenbrock()
        >>> traces = compare(fn.objective(), fn.x0(), {"L-BFGS-B": "L-BFGS-B", "CG": "cg"},
        ...                  max_grad_evals=60)
        >>> {name: (int(tr.njev[-1]) <= 60, tr.x is not None) for name, tr in traces.items()}
        {'L-BFGS-B': (True, True), 'CG': (True, True)}
        >>> tr = traces["L-BFGS-B"]
        >>> bool(tr.fun[0] == fn(-1.2, 1.0)), tr.evals_to(1e-6) < 60, tr.result.success
        (True, True, True)
    """
    if not callable(fun):
        raise TypeError(f"fun must be callable; got a {type_name(fun)}")
    budget = _check_budget(max_grad_evals)
    if not isinstance(optimizers, Mapping):
        raise TypeError(
            "optimizers must be a dict of name -> optimizer, e.g. {'L-BFGS-B': 'L-BFGS-B', "
            f"'Adam': (torch.optim.Adam, {{'lr': 0.1}})}}; got a {type_name(optimizers)}"
        )
    if not optimizers:
        raise ValueError("optimizers is empty: give at least one name -> optimizer")
    if not isinstance(args, tuple):
        args = (args,)
    if not isinstance(x0, Mapping):
        raise TypeError(
            f"x0 must be a dict (or other Mapping) of tensors; got a {type_name(x0)}. "
            "Wrap a single tensor as {'x': tensor}."
        )
    if len(x0) == 0:
        raise ValueError("x0 is empty: there is nothing to optimize")
    backend, layout, leaves = _prepare_x0(x0, None, False)
    framework = backend.name
    pair = _check_jac(jac, framework)
    keep = _check_keep_x(keep_x, layout.n)
    plans = [_parse(name, spec, framework) for name, spec in optimizers.items()]
    bounds = None
    flat = make_bounds(lb_dict, ub_dict, layout, backend)  # checks the bounds before any run
    if flat is not None:
        lows, highs = (
            layout.split_numpy(np.asarray(flat.lb)),
            layout.split_numpy(np.asarray(flat.ub)),
        )
        bounds = list(zip(lows, highs, strict=True))
    prob = _Problem(
        fun=fun,
        x0=x0,
        args=args,
        layout=layout,
        leaves=leaves,
        framework=framework,
        pair=pair,
        budget=budget,
        keep_x=keep,
        lb_dict=lb_dict,
        ub_dict=ub_dict,
        bounds=bounds,
    )
    out: dict[str, Trace] = {}
    for plan in plans:
        try:
            out[plan.name] = _RUNNERS[plan.kind](plan, prob)
        except Exception as exc:
            exc.add_note(f"dict_minimize.compare: raised while running optimizer {plan.name!r}")
            raise
    return out


def _num(v: float, spec: str = ".4g") -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return format(v, spec)


def _table_header(target: float | None, f_min: float | None) -> list[str]:
    """The columns of :func:`compare_table`."""
    gap = "" if f_min is None else " - f_min"
    header = ["optimizer", f"final{gap}", f"best{gap}", "grad evals"]
    if target is not None:
        header.append(f"evals to {target:g}")
    header.append("seconds")
    return header


def _table_cells(
    name: str, run: Any, target: float | None, f_min: float | None
) -> tuple[list[str], bool]:
    """One row of :func:`compare_table`, and whether its counts are function evaluations."""
    tr = as_trace(run, f"traces[{name!r}]")
    width = len(_table_header(target, f_min))
    if not len(tr):
        return [str(name)] + ["-"] * (width - 1), False
    last = tr.row(-1)
    by, mark = "njev", ""
    if last["njev"] == 0 and last["nfev"] > 0:
        by, mark = "nfev", "*"
    shift = 0.0 if f_min is None else float(f_min)
    finite = np.isfinite(tr.fun).any()
    cells = [
        str(name),
        _num(last["fun"] - shift),
        _num(tr.best()["fun"] - shift) if finite else "-",
        f"{last[by]}{mark}",
    ]
    if target is not None:
        hit = tr.evals_to(float(target), by=by)
        cells.append("-" if hit is None else f"{hit}{mark}")
    cells.append("-" if math.isnan(last["time"]) else f"{last['time']:.3g}")
    return cells, bool(mark)


def compare_table(
    traces: Mapping[str, Any], *, target: float | None = None, f_min: float | None = None
) -> str:
    """The runs of :func:`compare` side by side, as a plain-text table.

    One row per trace: its name, the final value and the best value (with ``f_min``: their
    gaps to it, ``final - f_min`` and ``best - f_min``, in place of the values), the gradient
    evaluations used, the evaluations until the value first reached ``target`` ("-" when it
    never did; only with ``target``) and the seconds the run took. For a gradient-free run
    (no gradient evaluations) the counts are function evaluations, marked ``*``.

    Args:
        traces: name -> :class:`~dict_minimize.Trace` (what :func:`compare` returns) or a
            result with a ``.trace`` (``minimize(..., trace=True)``).
        target: a value to reach; adds the column of evaluations until it was reached.
        f_min: the known minimum; the value columns become the gaps to it.

    Returns:
        str: the table, fixed-width columns, one line per trace below a header and a rule.

    Example:
        >>> from dict_minimize._compare.compare import compare, compare_table
        >>> from dict_minimize.testfunctions import rastrigin
        >>> fn = rastrigin()  # from (-2, 3.5) both end in the local minimum near (-2, 3)
        >>> traces = compare(fn.objective(), fn.x0(),
        ...                  {"L-BFGS-B": "L-BFGS-B", "Newton-CG": "newton-cg"}, max_grad_evals=60)
        >>> print(compare_table(traces, target=13.0, f_min=fn.f_min))
        optimizer  final - f_min  best - f_min  grad evals  evals to 13  seconds
        ---------  -------------  ------------  ----------  -----------  -------...
        L-BFGS-B   12.93          12.93         ...
        Newton-CG  12.93          12.93         ...
    """
    if not isinstance(traces, Mapping):
        raise TypeError(
            f"traces must be a dict of name -> Trace (what compare returns); got a "
            f"{type_name(traces)}"
        )
    if target is not None and not isinstance(target, (int, float, np.number)):
        raise TypeError(f"target must be a number; got a {type_name(target)}")
    if f_min is not None and not isinstance(f_min, (int, float, np.number)):
        raise TypeError(f"f_min must be a number; got a {type_name(f_min)}")
    header = _table_header(target, f_min)
    rows = []
    starred = False
    for name, run in traces.items():
        cells, star = _table_cells(name, run, target, f_min)
        rows.append(cells)
        starred = starred or star
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    for cells in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    if starred:
        lines.append("* function evaluations (a gradient-free method)")
    return "\n".join(lines)
