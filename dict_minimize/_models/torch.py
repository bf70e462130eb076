"""PyTorch models: ``minimize_module`` over an ``nn.Module``, and ``ScipyOptimizer``.

Both are thin calls over :func:`dict_minimize.minimize`; what differs is how the dict of
parameters meets the model:

- :func:`minimize_module` never touches the module while SciPy runs: each evaluation calls
  ``loss_fn`` under :func:`torch.func.functional_call` with the candidate tensors in place of
  the parameters, so autograd differentiates through them (``jac='autodiff'``, and exact Hessian
  products for second-order methods), and the module's ``Parameter`` objects are written once,
  in place, at the end.
- :class:`ScipyOptimizer` is a ``torch.optim.Optimizer``: its ``closure`` (the one
  ``torch.optim.LBFGS`` takes) fills ``.grad`` itself, so each evaluation copies the candidate
  into the parameters, calls the closure and reads the gradients back (``jac=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from dict_minimize._errors import type_name
from dict_minimize._solvers.minimize import OptimizeResult, minimize
from dict_minimize._threads import check_threads

__all__ = ["ScipyOptimizer", "minimize_module"]

#: keywords of minimize that the model entry points set themselves
_OWN = ("jac", "backend", "x0", "fun")


def _refuse_own(kwargs: Mapping[str, Any], where: str, why: str) -> None:
    for key in _OWN:
        if key in kwargs:
            raise TypeError(f"{where} does not take {key}=: {why}")


def _names_of(items: Iterable[str], limit: int = 12) -> str:
    names = list(items)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _check_initialized(name: str, p: torch.Tensor) -> None:
    if isinstance(p, torch.nn.parameter.UninitializedParameter):
        raise ValueError(
            f"parameter {name!r} is not initialized yet (a lazy module): run one forward pass "
            "before minimizing"
        )


def select_parameters(module: torch.nn.Module, params: Any) -> dict[str, torch.nn.Parameter]:
    """The parameters to optimize, by name in ``named_parameters()`` order.

    ``params``: None (every parameter that requires grad), an iterable of names or of the
    ``Parameter`` objects themselves, or a predicate ``(name, parameter) -> bool``.
    """
    named = dict(module.named_parameters())
    if params is None:
        chosen = {k: p for k, p in named.items() if p.requires_grad}
        if not chosen:
            raise ValueError(
                "the module has no parameter that requires grad: there is nothing to optimize"
            )
    elif callable(params):
        chosen = {k: p for k, p in named.items() if p.requires_grad and params(k, p)}
        if not chosen:
            raise ValueError("params selected no parameter that requires grad")
    else:
        if isinstance(params, (str, torch.Tensor)):
            params = [params]
        by_id = {id(p): k for k, p in named.items()}
        buffers = dict(module.named_buffers())
        wanted: list[str] = []
        for item in params:
            if isinstance(item, str):
                if item not in named:
                    kind = "a buffer, not a parameter" if item in buffers else "not a parameter"
                    raise KeyError(
                        f"params names {item!r}, which is {kind} of the module; its parameters "
                        f"are {_names_of(named)}"
                    )
                wanted.append(item)
            elif isinstance(item, torch.Tensor):
                if id(item) not in by_id:
                    raise ValueError(
                        f"params holds a {type_name(item)} of shape {tuple(item.shape)} that is "
                        "not a parameter of the module"
                    )
                wanted.append(by_id[id(item)])
            else:
                raise TypeError(
                    f"params must be None, a predicate (name, parameter) -> bool, or an "
                    f"iterable of parameter names or Parameters; it holds a {type_name(item)}"
                )
        if not wanted:
            raise ValueError("params is empty: there is nothing to optimize")
        chosen = {}
        for k in named:  # the module's order, whatever the order given
            if k in wanted:
                if not named[k].requires_grad:
                    raise ValueError(
                        f"parameter {k!r} has requires_grad=False (frozen); unfreeze it with "
                        f"requires_grad_(True) to optimize it, or leave it out of params"
                    )
                chosen[k] = named[k]
    for k, p in chosen.items():
        _check_initialized(k, p)
    return chosen


def _by_name(bound: Any, chosen: Mapping[str, torch.Tensor], what: str) -> Any:
    """Bounds may be keyed by the Parameter objects too: turn those keys into names."""
    if not isinstance(bound, Mapping) or not any(isinstance(k, torch.Tensor) for k in bound):
        return bound
    names = {id(p): k for k, p in chosen.items()}
    out = {}
    for key, value in bound.items():
        if isinstance(key, torch.Tensor):
            if id(key) not in names:
                raise ValueError(
                    f"{what} is keyed by a tensor of shape {tuple(key.shape)} that is not one "
                    "of the parameters being optimized"
                )
            key = names[id(key)]
        out[key] = value
    return out


class _Loss(torch.nn.Module):
    """``loss_fn(module, *args)`` as a module, so ``functional_call`` can swap the parameters."""

    def __init__(self, module: torch.nn.Module, loss_fn: Callable) -> None:
        super().__init__()
        self.m = module
        self.loss_fn = loss_fn

    def forward(self, *args: Any) -> Any:
        return self.loss_fn(self.m, *args)


def _assign(params: Mapping[Any, torch.Tensor], values: Mapping[Any, Any]) -> None:
    """Write ``values`` into the parameters in place (the same tensor objects)."""
    with torch.no_grad():
        for key, p in params.items():
            p.copy_(values[key])


def _assign_best_and_raise(exc: BaseException, params: Mapping[Any, torch.Tensor]) -> None:
    best = getattr(exc, "dict_minimize_result", None)
    if best is not None:
        _assign(params, best.x)


def minimize_module(
    module: torch.nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    *,
    params: Any = None,
    args: Any = (),
    method: str | Callable | None = None,
    lb_dict: Mapping[Any, Any] | None = None,
    ub_dict: Mapping[Any, Any] | None = None,
    **kwargs: Any,
) -> OptimizeResult:
    """Fit an ``nn.Module``'s parameters with ``scipy.optimize.minimize``, in place.

    The parameters form the dict ``{name: tensor}`` of ``module.named_parameters()``; SciPy
    optimizes it with gradients by autograd (``jac='autodiff'``; second-order methods get exact
    Hessian-vector products). While SciPy runs the module is not modified: ``loss_fn`` runs
    under :func:`torch.func.functional_call` with the candidate values in place of the
    parameters. At the end the solution is copied into the **same** ``Parameter`` objects, so
    optimizers, hooks and tied weights that hold them keep working.

    Args:
        module: the model. Its dtype, device and train/eval mode are kept; buffers and
            parameters that are not optimized are constants of the fit. In train mode a forward
            pass may still update buffers (BatchNorm's running statistics) at every evaluation,
            as it does in any training loop; call ``module.eval()`` first to fit a fixed
            objective.
        loss_fn: ``loss_fn(module, *args)`` returns a scalar tensor (call the module, or read
            its parameters, e.g. for weight decay: both see the candidate values).
        params: which parameters to optimize: None (every one with ``requires_grad``), an
            iterable of names (as in ``named_parameters()``) or of the ``Parameter`` objects, or
            a predicate ``(name, parameter) -> bool``. Frozen parameters
            (``requires_grad=False``) are never optimized.
        args: extra positional arguments for ``loss_fn`` (e.g. the data).
        method: any ``scipy.optimize.minimize`` method; default as in :func:`minimize`.
        lb_dict: lower bounds keyed by parameter name (or ``Parameter``), any subset; a scalar
            broadcasts over the parameter.
        ub_dict: upper bounds, the same way.
        **kwargs: the rest of :func:`dict_minimize.minimize`'s options (``tol``, ``options``,
            ``callback`` (it sees the dict of parameter values), ``constraints`` (functions of
            that dict), ``hess``, ``hessp``, ``nonfinite``, ``threads``). ``jac`` is not
            taken: the gradient comes from autograd.

    Returns:
        OptimizeResult: ``x`` and ``jac`` are dicts ``{name: tensor}`` (detached copies, equal to
        the parameters' new values); the rest as from :func:`dict_minimize.minimize`. The
        parameters' ``.grad`` is not touched. A run stopped by ``KeyboardInterrupt`` leaves
        the best point seen in the parameters and returns it with ``success=False``; if
        ``loss_fn`` raises, the best point seen is written to the parameters before the error
        propagates.

    Example:
        >>> import torch
        >>> from dict_minimize.torch_api import minimize_module
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> X = torch.randn(20, 3, dtype=torch.float64)
        >>> y = X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.25
        >>> model = torch.nn.Linear(3, 1).double()
        >>> def loss(m, X, y):
        ...     return ((m(X).squeeze(-1) - y) ** 2).mean()
        >>> res = minimize_module(model, loss, args=(X, y), method="L-BFGS-B",
        ...                       ub_dict={"bias": 0.2})
        >>> res.success, round(model.bias.item(), 6), sorted(res.x)
        (True, 0.2, ['bias', 'weight'])
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got a {type_name(module)}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable; got a {type_name(loss_fn)}")
    _refuse_own(kwargs, "minimize_module", "the gradient comes from autograd over the module")
    chosen = select_parameters(module, params)
    wrapper = _Loss(module, loss_fn)
    inner = {k: "m." + k for k in chosen}  # the names inside the wrapper, made once

    def objective(x: Mapping[str, torch.Tensor], *a: Any) -> torch.Tensor:
        swapped = {inner[k]: v for k, v in x.items()}
        return torch.func.functional_call(wrapper, swapped, a, tie_weights=True, strict=False)

    x0 = {k: p.detach() for k, p in chosen.items()}
    try:
        res = minimize(
            objective,
            x0,
            args=args,
            method=method,
            jac="autodiff",
            lb_dict=_by_name(lb_dict, chosen, "lb_dict"),
            ub_dict=_by_name(ub_dict, chosen, "ub_dict"),
            backend="torch",
            **kwargs,
        )
    except Exception as exc:
        _assign_best_and_raise(exc, chosen)
        raise
    _assign(chosen, res.x)
    return res


#: solve-wide settings: one SciPy solve runs over all groups, so they must agree
_SOLVE_KEYS = ("method", "tol", "options", "nonfinite", "blas_threads", "threads")
#: settings a param group may set for its own parameters
_GROUP_KEYS = ("lb", "ub")


class ScipyOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` whose ``step(closure)`` runs one whole SciPy solve.

    The closure is exactly the one ``torch.optim.LBFGS`` takes: it zeroes the gradients,
    computes the loss, calls ``backward()`` and returns the loss. A script written for
    ``torch.optim.LBFGS`` switches by changing the line that builds the optimizer. Each
    evaluation SciPy asks for writes the candidate into the parameters (in place) and calls the
    closure; at the end of ``step`` the parameters hold the solution and their ``.grad`` the
    gradient there.

    Args:
        params: an iterable of parameters, or of param-group dicts (as for any
            ``torch.optim`` optimizer). A group may set its own bounds, ``lb`` and ``ub``:
            a scalar for every parameter of the group, or a list with one entry per parameter
            (a scalar, a tensor of its shape, or None). Other per-group settings (a learning
            rate, a method per group) are refused: one SciPy solve runs over all groups.
        method: any ``scipy.optimize.minimize`` method; L-BFGS-B by default. Second-order
            methods that need a Hessian cannot get one from a closure: use
            :func:`minimize_module` for those.
        lb: the default lower bound of every group (None: unbounded).
        ub: the default upper bound, the same way.
        tol: SciPy's tolerance for termination.
        options: SciPy's method options, e.g. ``{"maxiter": 100}``.
        callback: ``callback(x_dict)`` (or SciPy's ``callback(intermediate_result)``) after
            each iteration, where ``x_dict`` maps each parameter's index (its number in
            ``state_dict()``) to its values.
        nonfinite: as in :func:`dict_minimize.minimize`.
        blas_threads: the older name of ``threads``, as in :func:`dict_minimize.minimize`.
        trace: as in :func:`dict_minimize.minimize`, for each step's solve
            (``last_result.trace``); not part of ``state_dict()``.
        progress: as in :func:`dict_minimize.minimize`.
        time_limit: as in :func:`dict_minimize.minimize`, per step.
        threads: as in :func:`dict_minimize.minimize` (``"auto"``: one thread, PyTorch's
            intra-op threads included, for problems under 1,000,000 parameters whose closure
            takes under 20 ms).

    ``step(closure)`` returns the loss at the solution (a 0-d tensor) and keeps SciPy's full
    result as ``last_result``. ``state_dict()`` holds the settings (in the param groups) and a
    summary of the solves so far (``state["scipy"]``: number of steps, evaluations, the last
    value and message); ``load_state_dict`` restores both. SciPy keeps no state between solves,
    so each ``step`` starts afresh from the current parameters.

    Example:
        >>> import torch
        >>> from dict_minimize.torch_api import ScipyOptimizer
        >>> w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        >>> target = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
        >>> opt = ScipyOptimizer([w], method="L-BFGS-B", ub=2.5)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = ((w - target) ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)
        >>> [round(v, 6) for v in w.tolist()], round(float(loss), 6)
        ([1.0, 2.0, 2.5], 0.25)
    """

    def __init__(
        self,
        params: Any,
        method: str | Callable = "L-BFGS-B",
        *,
        lb: Any = None,
        ub: Any = None,
        tol: float | None = None,
        options: Mapping[str, Any] | None = None,
        callback: Callable | None = None,
        nonfinite: str = "inf",
        blas_threads: int | None = None,
        trace: bool | str = False,
        progress: bool | Mapping[str, Any] = False,
        time_limit: float | None = None,
        threads: int | str | None = "auto",
    ) -> None:
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(f"options must be a dict; got a {type_name(options)}")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable; got a {type_name(callback)}")
        defaults = {
            "method": method,
            "lb": lb,
            "ub": ub,
            "tol": tol,
            "options": dict(options or {}),
            "nonfinite": nonfinite,
            "blas_threads": blas_threads,
            "threads": check_threads(threads),
        }
        super().__init__(params, defaults)
        self.callback = callback
        # how each step's solve is watched (not state: a bar or a limit is not a setting to
        # restore with load_state_dict)
        self.watch: dict[str, Any] = {
            "trace": trace,
            "progress": progress,
            "time_limit": time_limit,
        }
        self.last_result: OptimizeResult | None = None

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters; only its bounds (``lb``, ``ub``) may differ."""
        if isinstance(param_group, Mapping):
            odd = sorted(k for k in param_group if k not in ("params", *_GROUP_KEYS))
            solve_wide = [k for k in odd if k in _SOLVE_KEYS]
            if solve_wide:
                raise ValueError(
                    f"a param group sets {solve_wide}: ScipyOptimizer runs one SciPy solve over "
                    "all groups, so these are set once, in the constructor"
                )
            if odd:
                raise ValueError(
                    f"a param group sets {odd}, which ScipyOptimizer does not use; a group may "
                    f"set only its bounds, {list(_GROUP_KEYS)}"
                )
        super().add_param_group(param_group)

    def _problem(self) -> tuple[dict[int, torch.Tensor], dict[int, Any], dict[int, Any]]:
        """The parameters to optimize by state_dict index, and their bounds."""
        first = self.param_groups[0]
        for key in _SOLVE_KEYS:  # load_state_dict may bring groups that disagree
            if any(g.get(key) != first.get(key) for g in self.param_groups[1:]):
                raise ValueError(f"the param groups disagree on {key!r}; it must be one value")
        chosen: dict[int, torch.Tensor] = {}
        lbs: dict[int, Any] = {}
        ubs: dict[int, Any] = {}
        index = 0
        for g, group in enumerate(self.param_groups):
            n = len(group["params"])
            per = {}
            for side in _GROUP_KEYS:
                value = group[side]
                if isinstance(value, (list, tuple)):
                    if len(value) != n:
                        raise ValueError(
                            f"param group {g}'s {side} is a list of {len(value)} bounds for "
                            f"{n} parameters; give one per parameter (None where unbounded), "
                            "or one scalar"
                        )
                    per[side] = list(value)
                else:
                    per[side] = [value] * n
            for i, p in enumerate(group["params"]):
                if p.requires_grad:
                    _check_initialized(f"param_groups[{g}]['params'][{i}]", p)
                    chosen[index] = p
                    if per["lb"][i] is not None:
                        lbs[index] = per["lb"][i]
                    if per["ub"][i] is not None:
                        ubs[index] = per["ub"][i]
                index += 1
        if not chosen:
            raise ValueError("no parameter requires grad: there is nothing to optimize")
        return chosen, lbs, ubs

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> torch.Tensor:  # type: ignore[override]
        """Run one SciPy solve from the current parameters; return the loss at the solution.

        Args:
            closure: zeroes the gradients, computes the loss, calls ``backward()`` and returns
                the loss (as for ``torch.optim.LBFGS``); required.
        """
        if closure is None or not callable(closure):
            raise TypeError(
                "ScipyOptimizer.step needs a closure (as torch.optim.LBFGS does): a function "
                "that zeroes the gradients, computes the loss, calls loss.backward() and "
                "returns the loss"
            )
        chosen, lbs, ubs = self._problem()
        settings = self.param_groups[0]
        seen: dict[str, Any] = {}

        def fun(x: Mapping[int, torch.Tensor]) -> tuple[Any, dict[int, torch.Tensor]]:
            _assign(chosen, x)
            with torch.enable_grad():
                loss = closure()
            if isinstance(loss, torch.Tensor):
                seen.setdefault("like", loss)
                loss = loss.detach()
            # copies: the next closure may zero .grad in place while SciPy still holds this one
            grads = {
                k: torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
                for k, p in chosen.items()
            }
            return loss, grads

        x0 = {k: p.detach().clone() for k, p in chosen.items()}
        try:
            res = minimize(
                fun,
                x0,
                method=settings["method"],
                jac=True,
                lb_dict=lbs or None,
                ub_dict=ubs or None,
                tol=settings["tol"],
                options=settings["options"] or None,
                callback=self.callback,
                nonfinite=settings["nonfinite"],
                blas_threads=settings["blas_threads"],
                threads=settings.get("threads", "auto"),  # state dicts from before it
                backend="torch",
                **self.watch,
            )
        except Exception as exc:
            _assign_best_and_raise(exc, chosen)
            raise
        _assign(chosen, res.x)
        for k, p in chosen.items():
            p.grad = res.jac[k].detach().clone()
        self._record(res)
        like = seen.get("like")
        if isinstance(like, torch.Tensor):
            return torch.tensor(res.fun, dtype=like.dtype, device=like.device)
        return torch.tensor(res.fun, dtype=torch.float64)

    def _record(self, res: OptimizeResult) -> None:
        self.last_result = res
        summary = self.state.get("scipy", {"steps": 0, "nfev": 0})  # type: ignore[call-overload]
        self.state["scipy"] = {  # type: ignore[index]
            "steps": summary["steps"] + 1,
            "nfev": summary["nfev"] + int(res.nfev),
            "fun": float(res.fun),
            "success": bool(res.success),
            "message": str(res.message),
        }
