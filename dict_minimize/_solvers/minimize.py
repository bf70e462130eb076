"""The one generic driver: dict in, SciPy on the flat float64 vector, dict out.

Nothing here imports a framework: every framework-specific step goes through the backend's
:class:`~dict_minimize._structure.types.Codec`, built once per call from the immutable layout.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from dict_minimize._errors import unknown_keyword
from dict_minimize._problem.constraints import make_constraints
from dict_minimize._problem.history import open_log
from dict_minimize._problem.prepare import prepare_x0 as _prepare_x0  # noqa: F401 (re-exported)
from dict_minimize._problem.reparam import has_reparametrisations, solve_reparametrised
from dict_minimize._problem.result import (  # noqa: F401 (OptimizeResult, PrecisionWarning, _note re-exported)
    OptimizeResult,
    PrecisionWarning,
    _first_row,
    _note,
)
from dict_minimize._problem.sparsity import objective_hessian
from dict_minimize._problem.trace import Monitor, bar_total
from dict_minimize._solvers.ipopt import finish_ipopt
from dict_minimize._solvers.minimize_setup import (
    add_sparsity,
    check_arguments,
    choose_bounds_and_method,
    choose_derivatives,
    pick_solver,
)
from dict_minimize._solvers.minimize_steps import (
    _SCIPY_STOPS,
    GRADIENT_FREE,
    _call_scipy,
    _finish,
    _flat_functions,
    _make_objective,
    _no_calls,
    _timed_first,
    _wants_result,
    _wrap_callback,
)
from dict_minimize._threads import solve_threads


def minimize(
    fun: Callable,
    x0: Mapping[Any, Any],
    *,
    args: Any = (),
    method: str | Callable | None = None,
    jac: bool | str | Callable | None = True,
    hess: str | Callable | Any | None = None,
    hessp: str | Callable | None = None,
    bounds: Any = None,
    constraints: Any = (),
    lb_dict: Mapping[Any, Any] | None = None,
    ub_dict: Mapping[Any, Any] | None = None,
    tol: float | None = None,
    callback: Callable | None = None,
    options: Mapping[str, Any] | None = None,
    backend: str | None = None,
    jit: bool | None = None,
    nonfinite: str = "inf",
    blas_threads: int | None = None,
    trace: bool | str = False,
    progress: bool | Mapping[str, Any] = False,
    time_limit: float | None = None,
    threads: int | str | None = "auto",
    log: str | os.PathLike[str] | None = None,
    error_handling: str = "raise",
    maximize: bool = False,
    hess_sparsity: Any = None,
    check_sparsity: bool = False,
    **unknown: Any,
) -> OptimizeResult:
    """Minimize a scalar function of a dict of tensors with ``scipy.optimize.minimize``.

    The dict is flattened once into SciPy's float64 vector; at every evaluation the vector is
    turned back into tensors of ``x0``'s framework, dtype, shape and device, ``fun`` runs in that
    framework, and its gradient dict is matched to ``x0`` by key and flattened for SciPy.

    Args:
        fun: the objective. With ``jac=True`` (the default): ``fun(x_dict, *args) ->
            (value, grad_dict)``, where ``grad_dict`` has the keys and shapes of ``x0`` (in any
            order); otherwise ``fun(x_dict, *args) -> value``. ``value`` may be a framework
            scalar tensor, a NumPy scalar or a float. In PyTorch every entry of ``x_dict`` is a
            leaf that requires grad, so ``torch.autograd.grad`` works on it.
        x0: the starting point: a dict (or any Mapping) of NumPy arrays, PyTorch tensors, JAX
            arrays or TensorFlow tensors/Variables, all from one framework, each of a floating
            dtype (float16, bfloat16, float32, float64); any rank, 0-d and empty included.
            Entries may nest Mappings, lists, tuples and namedtuples to any depth (a pytree, as
            Flax parameters are), and, once JAX is imported, any registered JAX pytree node
            (an Equinox module, a ``flax.struct`` dataclass, ``nnx.State``), which may also be
            ``x0`` itself (``eqx.partition``'s params); inside such a node ``None`` is an empty
            subtree, as in JAX. ``fun``, callbacks, the result and gradients keep that nesting
            (the same classes and static fields), gradients are matched by path, and bounds
            may nest too (a scalar at an inner node bounds every leaf below it). A Python float
            leaf becomes a 0-d float64 tensor of x0's framework (NumPy if it has no tensors).
            See [Nested parameters](guide/nested.md) and [Models](guide/models.md).
        args: extra positional arguments for ``fun``, ``jac``, ``hess`` and ``hessp``.
        method: any method name of ``scipy.optimize.minimize`` (case-insensitive),
            ``'nlopt:<algorithm>'`` for NLopt's (``'nlopt:bobyqa'``, ``'nlopt:LD_MMA'``; the
            ``[nlopt]`` extra), ``'ipopt'`` (Ipopt through cyipopt, extra ``[ipopt]``: exact
            sparse derivatives by autodiff, ``res.multipliers``, ``res.z_L``/``res.z_U``; see
            [Large constrained problems and Ipopt](guide/ipopt.md)), or a custom callable; by
            default SLSQP with constraints, L-BFGS-B with bounds, BFGS otherwise.
            :func:`dict_minimize.methods` lists them with what each can do (see
            [Methods](guide/methods.md)); a misspelt name is a ValueError that suggests the
            closest.
        jac: ``True``: ``fun`` returns the gradient too; ``'autodiff'``: ``fun`` returns only
            the value and the framework computes value and gradient in one pass (PyTorch
            autograd, ``jax.value_and_grad`` compiled with ``jax.jit``, TensorFlow
            ``GradientTape``); a callable ``jac(x_dict, *args) -> grad_dict``; ``'2-point'``,
            ``'3-point'``: SciPy's finite differences on the flat vector (not ``'cs'``: fun
            gets real tensors);
            ``None``/``False``: SciPy's default for the method.
        hess: the Hessian, for methods that use one: ``'autodiff'`` (exact, dense
            ``(n, n)``; needs ``jac='autodiff'``), a callable ``hess(x_dict, *args)`` returning
            an ``(n, n)`` array or a dict of dicts of blocks (``hess[ki][kj]`` of shape
            ``x0[ki].shape + x0[kj].shape``, as ``jax.hessian`` gives), or SciPy's
            ``'2-point'``/``'3-point'``/``HessianUpdateStrategy``. With
            ``jac='autodiff'``, dogleg and trust-exact get ``hess='autodiff'`` by default.
        hessp: Hessian-vector products: ``'autodiff'`` (exact, forward-over-reverse; needs
            ``jac='autodiff'``) or a callable ``hessp(x_dict, p_dict, *args) -> dict``. With
            ``jac='autodiff'``, Newton-CG, trust-ncg, trust-krylov and trust-constr get
            ``hessp='autodiff'`` by default.
        constraints: for SLSQP, COBYLA, COBYQA and trust-constr: one constraint or a list —
            SciPy's dicts ``{'type': 'eq'|'ineq', 'fun': c, 'jac': ..., 'args': ...}`` with
            ``c(x_dict, *args)`` returning a tensor of any shape, :class:`NonlinearConstraint`,
            :class:`LinearConstraint` (coefficients per key), or SciPy's own constraint objects
            on the flat vector. A constraint's Jacobian comes from autodiff unless given.
            For any method: reparametrisations ``{'type': 'fixed'|'probability'|'increasing'|
            'decreasing'|'covariance'|'sdcorr'|'linear'|'positive'|'interval', 'key': ...}``,
            solved over free parameters (see
            [Constraints by reparametrisation](guide/reparametrisation.md)).
        bounds: SciPy's ``bounds``, in any of its forms: a :class:`scipy.optimize.Bounds`
            whose ``lb``/``ub`` (and ``keep_feasible``) are dicts keyed like ``x0`` (each
            value as in ``lb_dict``) or flat arrays of ``x0``'s scalars in key order; a dict
            ``{key: (lb, ub)}``; or a sequence of ``(lb, ub)`` pairs, one per scalar of
            ``x0`` in key order (``None``: unbounded). Flat forms go to SciPy unchanged.
            Not together with ``lb_dict``/``ub_dict``.
        lb_dict: lower bounds, optional, naming any subset of the keys. A value may be a scalar
            (broadcast), an array or tensor of the key's shape, None or -inf (unbounded).
        ub_dict: upper bounds, the same way (None or +inf: unbounded).
        tol: tolerance for termination, as in SciPy.
        callback: ``callback(x_dict)`` after each iteration, or
            ``callback(intermediate_result)`` (SciPy's form: ``.x`` is the dict, ``.fun`` the
            value, no re-evaluation; also ``.nit``, ``.nfev``, ``.njev``, the counts so far,
            and ``.grad_norm``, the gradient's norm there, NaN where none was computed).
            Raising ``StopIteration`` ends the run cleanly.
        options: method options, passed to SciPy unchanged (``maxiter``, ``gtol``,
            ``workers``...: an option given as a keyword of ``minimize`` is a TypeError that
            says so). NLopt's methods take NLopt's names (``xtol_rel``, ``ftol_rel``,
            ``maxeval``, ``maxtime``, ``stopval``...), and an unknown one is a ValueError.
        trace: ``True`` records one row per iteration in ``res.trace`` (a
            :class:`~dict_minimize.Trace`; the start point is row 0): the objective, the
            gradient's norm (NaN where no gradient was computed at that point), cumulative
            ``nfev``/``njev`` and seconds since the start, read from what SciPy and the
            evaluations already computed (the objective is never evaluated again for it);
            ``'x'`` also keeps each row's point as a dict like ``x0``. Works beside
            ``callback``.
        progress: ``True`` shows a tqdm progress bar (iterations, current value,
            evaluations), with ``options["maxiter"]`` as its total when given; a dict passes
            options to ``tqdm``. Needs the ``[progress]`` extra.
        time_limit: seconds; at the first iteration that ends after the limit the run stops
            as SciPy stops for a callback's ``StopIteration``: ``x`` is that iterate,
            ``success=False``, ``status=99`` (trust-constr: 3) and the message says the limit
            was reached. It is
            checked between iterations, so one slow iteration can overrun it.
        backend: force a backend (``'numpy'``, ``'torch'``, ``'jax'``, ``'tensorflow'``);
            detected from ``x0`` by default.
        jit: compile each evaluation as one function of SciPy's flat vector (split, ``fun``,
            concatenation). With ``jac='autodiff'``: JAX ``jax.jit`` by default; TensorFlow
            ``tf.function`` by default when ``fun`` is a ``tf.function``, eager otherwise.
            With ``jac=True``: by default when ``fun`` is already compiled (``jax.jit``,
            ``tf.function``, or ``value_and_grad`` of one), which removes the per-entry cost
            of calling a compiled function on a dict (50 ms -> 3.2 ms per evaluation at
            2,000 keys in TensorFlow). ``True`` compiles any traceable ``fun``; ``False`` runs
            ``fun`` eagerly, for functions that cannot be traced. PyTorch: ignored.
        nonfinite: what a non-finite value or gradient after ``x0`` means: ``'inf'`` (the
            default) counts the point as worse than every finite point seen, so line searches
            and trust regions back off (gradient methods see a finite value above all values
            seen, which their interpolation handles; gradient-free ones ``+inf``), and warns
            at the end naming the keys; ``'raise'`` raises :class:`NonFiniteError`. At ``x0``
            both are an error (the drop-in ``*_api.minimize`` warns instead). ``'pass'``:
            SciPy's own behaviour, at ``x0`` too — the values go to SciPy unchanged, nothing
            is raised or warned (see [Differences from SciPy](guide/scipy-differences.md)).
        blas_threads: the older name of ``threads`` (an int), kept for existing callers.
        threads: the threads of SciPy's BLAS, the objective's BLAS (NumPy's) and x0's
            framework (PyTorch's intra-op threads) during the solve, restored after. ``"auto"``
            (the default): one thread for problems under 1,000,000 variables, lifted for the
            objective when its first evaluation takes 20 ms or more; an int caps at that
            many; None leaves all threads alone. JAX/XLA and TensorFlow keep their own
            threads (they cannot change after they start). The environment variable
            ``DICT_MINIMIZE_THREADS`` (an int, ``auto`` or ``off``) overrides it. Thread
            pools cost small fits far more than they gain, on a busy machine 10-40x per
            evaluation (see the Performance guide). Results with one thread or several can
            differ in the last bits where a matrix product's kernel depends on the count.
        log: a SQLite file that receives, as the run goes, every evaluation (value, gradient
            norm, time, the point) and every trace row, each committed before the next
            evaluation starts: a killed run loses at most the evaluation in flight.
            :func:`~dict_minimize.read_log` gives the trace back (the rows ``trace=True``
            gives), from any process, during the run or after it ended or crashed. A file
            that exists gets one more run. See [History and TensorBoard](guide/history.md).
        error_handling: ``'raise'`` (the default): an exception from ``fun`` (or ``jac``)
            propagates. ``'continue'``: an exception at a trial point after ``x0`` makes that
            point worse than every point seen, exactly as a non-finite value does under
            ``nonfinite='inf'`` (whatever ``nonfinite`` says), and the run goes on; ``nfev``
            counts those evaluations, ``res.exception_count`` holds their number and the
            message names the first. An exception at ``x0`` still raises, and so do
            ``KeyboardInterrupt``, ``SystemExit``, ``StopIteration`` and this package's own
            errors about malformed output (a gradient's wrong shape or keys, a non-scalar
            value). See [Failure modes](guide/failure-modes.md).
        maximize: ``True`` maximizes ``fun`` (SciPy minimizes ``-fun``); ``fun``, ``jac``,
            ``hess`` and ``hessp`` are written for the function to maximize, as usual, and
            the result's ``fun`` and ``jac``, the trace and callbacks'
            ``intermediate_result.fun`` are in that sign: ``res.fun`` is the maximum. SciPy's
            other fields (``hess_inv``) stay those of ``-fun``. See
            [The result](guide/result.md).
        hess_sparsity: the sparsity pattern of the objective's Hessian, for a sparse Hessian
            by autodiff (needs ``jac='autodiff'``; trust-constr and Newton-CG): an ``(n, n)``
            bool array or SciPy sparse matrix over the flat vector, or a dict of dicts of
            per-key blocks (``[ki][kj]`` of shape ``x0[ki].shape + x0[kj].shape``; missing
            blocks are zero). SciPy then gets a ``scipy.sparse.csr_array`` computed with one
            Hessian-vector product per colour of the pattern; ``res.sparsity`` reports the
            colours. See [Sparse derivatives](guide/sparse.md).
        check_sparsity: compare every pattern given (``hess_sparsity``, the constraints'
            ``jac_sparsity``) with one dense evaluation at ``x0`` before the solve; a nonzero
            the pattern misses is a ValueError naming the constraint, the key and the entry.

    Returns:
        OptimizeResult: ``x`` and ``jac`` are dicts like ``x0``; ``fun`` is a float; ``nfev``,
            ``njev``, ``nit``, ``status``, ``success`` and ``message`` as in SciPy. A run
            stopped by ``KeyboardInterrupt`` returns the best point seen with ``success=False``.
            With a sparsity pattern, ``sparsity`` reports the colours (products per
            evaluation) of the objective's Hessian and of each constraint.

    Raises:
        TypeError, ValueError: for malformed input, with a message naming the key.
        NonFiniteError: a non-finite objective at ``x0`` (or later, with
            ``nonfinite='raise'``).
        ImportError: when ``x0``'s framework (or the forced backend) is not installed.
        Exception: anything ``fun`` or ``callback`` raises propagates unchanged, with a note
            giving the evaluation count and the best point so far attached as
            ``exc.dict_minimize_result``.

    Example:
        >>> import numpy as np
        >>> from dict_minimize import minimize
        >>> def fun(d):
        ...     r = d["w"] @ d["v"] - 3.0
        ...     return r**2, {"w": 2 * r * d["v"], "v": 2 * r * d["w"]}
        >>> res = minimize(fun, {"w": np.ones(2), "v": np.zeros(2)}, method="L-BFGS-B",
        ...                lb_dict={"v": 0.0})
        >>> res.success, round(res.fun, 8)
        (True, 0.0)
    """
    if unknown:
        raise unknown_keyword(unknown)
    return solve(
        fun,
        x0,
        args=args,
        method=method,
        jac=jac,
        hess=hess,
        hessp=hessp,
        scipy_bounds=bounds,
        constraints=constraints,
        lb_dict=lb_dict,
        ub_dict=ub_dict,
        tol=tol,
        callback=callback,
        options=options,
        backend=backend,
        jit=jit,
        nonfinite=nonfinite,
        blas_threads=blas_threads,
        interrupt="return",
        trace=trace,
        progress=progress,
        time_limit=time_limit,
        threads=threads,
        log=log,
        error_handling=error_handling,
        maximize=maximize,
        hess_sparsity=hess_sparsity,
        check_sparsity=check_sparsity,
    )


def solve(
    fun: Callable,
    x0: Mapping[Any, Any],
    *,
    args: Any,
    method: Any,
    jac: Any,
    hess: Any,
    hessp: Any,
    constraints: Any,
    lb_dict: Any,
    ub_dict: Any,
    tol: Any,
    callback: Any,
    options: Any,
    backend: str | None,
    jit: bool | None,
    nonfinite: str,
    interrupt: str,
    blas_threads: int | None = None,
    compat: bool = False,
    trace: Any = False,
    progress: Any = False,
    time_limit: Any = None,
    threads: Any = "auto",
    scipy_bounds: Any = None,
    log: Any = None,
    error_handling: str = "raise",
    maximize: bool = False,
    hess_sparsity: Any = None,
    check_sparsity: bool = False,
) -> OptimizeResult:
    """:func:`minimize`, with the choices the drop-in API makes differently.

    ``interrupt``: what a KeyboardInterrupt does (the drop-in raises). ``compat``: the original
    package's contract, where :func:`minimize` is strict: a non-finite objective at ``x0`` and
    bounds with a method that ignores them are warnings, not errors.
    """
    if has_reparametrisations(constraints):  # solved over the free parameters, then mapped back
        return solve_reparametrised(solve, dict(locals()))
    ok = check_arguments(
        fun,
        x0,
        args=args,
        backend=backend,
        jit=jit,
        compat=compat,
        threads=threads,
        blas_threads=blas_threads,
        callback=callback,
        options=options,
        nonfinite=nonfinite,
        error_handling=error_handling,
        maximize=maximize,
        trace=trace,
        time_limit=time_limit,
        log=log,
    )
    chosen = choose_bounds_and_method(
        x0,
        backend=backend,
        lb_dict=lb_dict,
        ub_dict=ub_dict,
        scipy_bounds=scipy_bounds,
        constraints=constraints,
        method=method,
        compat=compat,
    )
    be, layout, codec, x0_flat = chosen.be, chosen.layout, chosen.codec, chosen.x0_flat
    bounds, meth, name = chosen.bounds, chosen.meth, chosen.name
    mode, hess, hessp = choose_derivatives(
        chosen,
        method=method,
        jac=jac,
        hess=hess,
        hessp=hessp,
        options=options,
        hess_sparsity=hess_sparsity,
    )
    watch = (
        ok.record
        or ok.log_path is not None
        or ok.limit is not None
        or not (progress is None or progress is False)
    )
    # remember the last points only when a callback may need their values without re-evaluating
    track_last = watch or (
        callback is not None and (_wants_result(callback) or name not in _SCIPY_STOPS)
    )
    run = _make_objective(
        fun,
        ok.args,
        layout,
        codec,
        be,
        mode,
        jac,
        hess,
        hessp,
        name,
        jit,
        nonfinite,
        compat,
        track_last,
        error_handling,
        bool(maximize),
    )
    if hess_sparsity is not None:
        run.sparse_hess = objective_hessian(hess_sparsity, layout, codec, be, fun, ok.args, jit)
        if check_sparsity:
            run.sparse_hess.check(x0_flat)
    fun_flat, jac_flat, hess_flat, hessp_flat = _flat_functions(
        run, mode, jac, hess, hessp, method, name not in GRADIENT_FREE
    )
    flat_constraints, constraint_calls = (
        make_constraints(
            constraints, layout, codec, be, name, jit, check_at=x0_flat if check_sparsity else None
        )
        if chosen.has_constraints
        else ([], _no_calls)
    )
    monitor = None
    if watch:
        monitor = Monitor(
            trace=ok.record,
            keep_x=ok.keep_x,
            progress=progress,
            time_limit=ok.limit,
            method=str(meth),
            total=bar_total(options),
        )
        if ok.log_path is not None:
            monitor.attach_log(open_log(ok.log_path, run, str(meth)))
        run.on_first = _first_row(monitor, run)
        run.on_first_grad = monitor.first_grad
    scipy_callback = (
        None
        if callback is None and monitor is None
        else _wrap_callback(callback, run, name, monitor)
    )
    options = None if options is None else dict(options)
    report = False
    if name == "l-bfgs-b" and options is not None:
        # SciPy >= 1.17 deprecates (and 1.18 removes) L-BFGS-B's disp/iprint, which the
        # original package's README uses: honour the request with a summary of our own.
        report = bool(options.pop("disp", False)) | (int(options.pop("iprint", -1)) >= 0)
    kwargs: dict[str, Any] = {}
    if hess_flat is not None:
        kwargs["hess"] = hess_flat
    if hessp_flat is not None:
        kwargs["hessp"] = hessp_flat
    if flat_constraints:
        kwargs["constraints"] = flat_constraints
    caps = solve_threads(ok.threads, layout.n, be)
    if getattr(caps, "lift", False):
        run.on_first = _timed_first(run.on_first, caps)
    solver = pick_solver(
        name,
        run=run,
        constraints=constraints,
        has_constraints=chosen.has_constraints,
        flat_constraints=flat_constraints,
        bounds=bounds,
        hess_flat=hess_flat,
        fun_flat=fun_flat,
        jac_flat=jac_flat,
        scipy_callback=scipy_callback,
        options=options,
        tol=tol,
    )
    res, stopped = _call_scipy(
        run,
        monitor,
        caps,
        interrupt,
        constraint_calls if flat_constraints else None,
        fun_flat,
        x0_flat,
        solver=solver,
        method=method if isinstance(method, str) else meth,  # SciPy's warnings name it
        jac=jac_flat,
        bounds=bounds,
        tol=tol,
        callback=scipy_callback,
        options=options,
        **kwargs,
    )
    if stopped is not None:
        return stopped
    out = _finish(
        res,
        run,
        monitor,
        name,
        method,
        x0_flat,
        nonfinite,
        hess,
        hessp,
        report,
        constraint_calls if flat_constraints else None,
    )
    add_sparsity(out, run, flat_constraints)
    return finish_ipopt(out, run) if name == "ipopt" else out
