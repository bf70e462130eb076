"""``minimize_model``: SciPy on the variables of a Keras 3 or TensorFlow model, in place.

A thin call over :func:`dict_minimize.minimize`: the selected variables become ``x0`` (keyed
by their paths), and the objective assigns SciPy's point into them, runs ``loss_fn(model,
*args)`` under a ``tf.GradientTape`` and returns the loss and the gradient dict. Everything
else (layout, bounds, counting, non-finite points, interrupts, the result) is ``minimize``'s.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from dict_minimize._errors import fmt_keys, fmt_shape, type_name
from dict_minimize._solvers.minimize import OptimizeResult, minimize
from dict_minimize._solvers.minimize_steps import GRADIENT_FREE, NEEDS_HESS, TAKES_HESSP

_ZERO = tf.UnconnectedGradients.ZERO
#: the output index TensorFlow appends to a variable's name ("w:0")
_OUTPUT_INDEX = re.compile(r":\d+$")


class _Selected(NamedTuple):
    """The variables to optimize, in order: their keys, and the tf.Variable behind each (a Keras
    variable's ``.value``; a plain tf.Variable itself), which is what is assigned."""

    keys: list[str]
    tf_vars: list[tf.Variable]


def _keras_variable_class() -> type | None:
    """``keras.Variable`` if Keras is already imported (a model of it cannot exist otherwise)."""
    keras = sys.modules.get("keras")
    cls = getattr(keras, "Variable", None) if keras is not None else None
    return cls if isinstance(cls, type) else None


def _as_tf_variable(obj: Any, keras_var: Any) -> tf.Variable | None:
    """The ``tf.Variable`` that holds ``obj``'s value, or None when ``obj`` is no variable."""
    if isinstance(obj, tf.Variable):
        return obj
    if keras_var is not None and isinstance(obj, keras_var):
        keras = sys.modules["keras"]
        backend = keras.backend.backend()
        if backend != "tensorflow":
            raise TypeError(
                f"minimize_model differentiates with tf.GradientTape, and this Keras runs on "
                f"the {backend!r} backend: set KERAS_BACKEND=tensorflow before importing keras"
            )
        value = obj.value
        if not isinstance(value, tf.Variable):  # pragma: no cover - Keras internals changed
            raise TypeError(f"the Keras variable {obj.path!r} is not backed by a tf.Variable")
        return value
    return None


def _key(obj: Any) -> str:
    """A Keras 3 variable's ``path`` ("dense/kernel"), else the name without ":0"."""
    path = getattr(obj, "path", None)
    if isinstance(path, str) and path:
        return path
    return _OUTPUT_INDEX.sub("", str(obj.name))


def _describe(obj: Any) -> str:
    return f"a {type_name(obj)} of shape {fmt_shape(obj.shape)}"


def _model_variables(model: Any, attr: str) -> list[Any]:
    found = getattr(model, attr, None)
    if found is None:
        raise TypeError(
            f"model must be a Keras model or layer, or a tf.Module (something with "
            f"trainable_variables); got a {type_name(model)}"
        )
    return list(found)


def _select(model: Any, variables: Any) -> _Selected:
    """``variables`` (None, names, variable objects or a predicate) as the ordered selection."""
    keras_var = _keras_variable_class()
    trainable = _model_variables(model, "trainable_variables")
    if variables is None:
        chosen = trainable
    elif callable(variables) and _as_tf_variable(variables, keras_var) is None:
        chosen = [v for v in trainable if variables(_key(v), v)]
        if not chosen:
            raise ValueError(
                "the variables predicate selected none of the model's trainable variables "
                f"({fmt_keys([_key(v) for v in trainable]) or 'none'}): nothing to optimize"
            )
    else:
        chosen = _explicit(model, variables, trainable, keras_var)
    if not chosen:
        raise ValueError(
            "the model has no trainable variables: nothing to optimize. A Keras model creates "
            "its variables when it is built: call it once on a batch, or model.build(shape)"
        )
    selected = _Selected([], [])
    owner: dict[str, Any] = {}
    seen: set[int] = set()
    for obj in chosen:
        tf_var = _as_tf_variable(obj, keras_var)
        if tf_var is None:
            raise TypeError(
                f"variables must hold tf.Variable or keras.Variable objects (or their names); "
                f"got a {type_name(obj)}"
            )
        if id(tf_var) in seen:  # the same variable twice (tied weights): optimized once
            continue
        seen.add(id(tf_var))
        key = _key(obj)
        if key in owner:
            raise ValueError(
                f"two different variables have the key {key!r} ({_describe(owner[key])} and "
                f"{_describe(obj)}): "
                "results and bounds are keyed by variable path (Keras 3) or name, so they must "
                "be unique. Give them distinct names (tf.Variable(..., name=...) or the layers' "
                "name=...), or select one of them with variables=[...]"
            )
        owner[key] = obj
        selected.keys.append(key)
        selected.tf_vars.append(tf_var)
    return selected


def _explicit(model: Any, variables: Any, trainable: list[Any], keras_var: Any) -> list:
    """Variables given by name or as objects; each must be trainable."""
    if isinstance(variables, str) or _as_tf_variable(variables, keras_var) is not None:
        variables = [variables]
    elif not isinstance(variables, Iterable):
        raise TypeError(
            "variables must be None, an iterable of variables or of their names, or a "
            f"predicate (path, variable) -> bool; got a {type_name(variables)}"
        )
    everything = getattr(model, "variables", None)
    candidates = list(trainable) if everything is None else list(everything)
    by_key: dict[str, list[Any]] = {}
    for v in candidates:
        by_key.setdefault(_key(v), []).append(v)
    trainable_ids = {id(v) for v in trainable}
    candidate_ids = {id(v) for v in candidates}
    # a tf.Variable behind a Keras variable of the model is named as the Keras one
    behind: dict[int, Any] = {}
    for v in candidates:
        tf_var = _as_tf_variable(v, keras_var)
        if tf_var is not None and tf_var is not v:
            behind[id(tf_var)] = v
    chosen = []
    for item in variables:
        if isinstance(item, str):
            matches = by_key.get(item) or by_key.get(_OUTPUT_INDEX.sub("", item))
            if not matches:
                raise KeyError(
                    f"the model has no variable {item!r}; its variables are "
                    f"{fmt_keys(list(by_key), limit=20) or 'none'}"
                )
            if len(matches) > 1:
                raise ValueError(
                    f"{len(matches)} variables of the model are named {item!r}: select them "
                    "as objects (variables=[model.w, ...]) or give them distinct names"
                )
            obj = matches[0]
        else:
            obj = behind.get(id(item), item)
        if _as_tf_variable(obj, keras_var) is None:
            raise TypeError(
                f"variables must hold tf.Variable or keras.Variable objects (or their names); "
                f"got a {type_name(obj)}"
            )
        if not bool(obj.trainable) or (id(obj) in candidate_ids and id(obj) not in trainable_ids):
            raise ValueError(
                f"variable {_key(obj)!r} is not trainable (a frozen layer, or a "
                "non-trainable variable such as a batch-norm statistic): minimize_model only "
                "changes trainable variables. Set layer.trainable = True to optimize it"
            )
        chosen.append(obj)
    if not chosen:
        raise ValueError("variables is empty: there is nothing to optimize")
    return chosen


def _checked_loss(loss: Any) -> Any:
    """``loss_fn``'s value, or a TypeError/ValueError saying what is wrong with it."""
    if not isinstance(loss, (tf.Tensor, tf.Variable)):
        hint = ""
        if isinstance(loss, (float, int, np.generic, np.ndarray)):
            hint = (
                ". A Python or NumPy number carries no derivative: compute the loss with "
                "TensorFlow or Keras operations (no float(), .numpy() or NumPy functions)"
            )
        raise TypeError(
            "loss_fn must return a scalar tf.Tensor computed from the model's variables; it "
            f"returned a {type_name(loss)}{hint}"
        )
    rank = loss.shape.rank
    if rank is not None and rank != 0:
        raise ValueError(
            f"loss_fn returned a tensor of shape {fmt_shape(loss.shape)}; expected a scalar. "
            "Reduce it with tf.reduce_mean or tf.reduce_sum"
        )
    if not loss.dtype.is_floating:
        raise TypeError(
            f"loss_fn returned a {loss.dtype.name} tensor; expected a real floating scalar "
            "(float16, bfloat16, float32 or float64)"
        )
    return loss


def _graph_input(arg: Any, dtype: tf.DType | None) -> Any:
    """``arg`` with its NumPy arrays made tensors once (a tf.function would convert them at
    every call); they are inputs of the compiled function, never constants of its graph.

    Floating arrays take the variables' dtype when they all share one, as Keras's ``fit`` does
    for its data: eagerly, ``float32_tensor - float64_array`` converts the array, but in a
    graph a float64 input would make the same line a dtype error.
    """

    def convert(a: Any) -> Any:
        if not isinstance(a, np.ndarray):
            return a
        if dtype is not None and np.issubdtype(a.dtype, np.floating):
            return tf.constant(a, dtype=dtype)
        return tf.convert_to_tensor(a)

    try:
        return tf.nest.map_structure(convert, arg)
    except (TypeError, ValueError):  # a structure tf.nest cannot take apart: passed as it is
        return arg


def _reason(exc: BaseException) -> str:
    """The last line of a tracing error (TF puts the user's frame and the error there)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    if not last.startswith(type(exc).__name__):
        last = f"{type(exc).__name__}: {last}" if last else type(exc).__name__
    frames = [ln for ln in lines if ln.startswith("File ")]
    return f"{last} ({frames[-1]})" if frames else last


class _Program:
    """The loss, its gradient and its Hessian-vector products as functions of the variables'
    values: each one ``tf.function`` (traced once, before SciPy starts) or eager."""

    def __init__(self, model: Any, loss_fn: Callable, sel: _Selected, args: tuple, jit: Any):
        self.model, self.loss_fn, self.sel, self.args = model, loss_fn, sel, args
        self.jit = jit
        self.eager = jit is False
        dtypes = {v.dtype for v in sel.tf_vars}
        common = dtypes.pop() if len(dtypes) == 1 else None
        self.graph_args = args if self.eager else tuple(_graph_input(a, common) for a in args)
        self.compiled: dict[str, Callable] = {}

    def _assign(self, values: list) -> None:
        for var, value in zip(self.sel.tf_vars, values, strict=True):
            var.assign(value)

    def _loss(self, args: tuple) -> Any:
        return _checked_loss(self.loss_fn(self.model, *args))

    def value_body(self, values: list, args: tuple) -> Any:
        self._assign(values)
        return self._loss(args)

    def pair_body(self, values: list, args: tuple) -> Any:
        self._assign(values)
        tf_vars = self.sel.tf_vars
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(tf_vars)
            loss = self._loss(args)
        grads = tape.gradient(loss, tf_vars, unconnected_gradients=_ZERO)
        return loss, [tf.convert_to_tensor(g) for g in grads]

    def hvp_body(self, values: list, tangents: list, args: tuple) -> Any:
        """Reverse over reverse: the gradient of <gradient, tangents>."""
        self._assign(values)
        tf_vars = self.sel.tf_vars
        with tf.GradientTape(watch_accessed_variables=False) as outer:
            outer.watch(tf_vars)
            with tf.GradientTape(watch_accessed_variables=False) as inner:
                inner.watch(tf_vars)
                loss = self._loss(args)
            grads = [
                tf.convert_to_tensor(g)
                for g in inner.gradient(loss, tf_vars, unconnected_gradients=_ZERO)
            ]
        hv = outer.gradient(grads, tf_vars, output_gradients=tangents, unconnected_gradients=_ZERO)
        return [tf.convert_to_tensor(h) for h in hv]

    def prepare(self, name: str, probe: tuple) -> None:
        """Trace ``name``'s body at ``probe`` (the values at x0) unless running eagerly.

        ``jit=None``: when tracing fails, the body runs once eagerly at the probe; if that
        works, everything runs eagerly from now on, after a warning giving the reason; if it
        fails too, the eager error propagates unchanged.
        """
        if self.eager:
            return
        body = getattr(self, f"{name}_body")
        fn = tf.function(body)
        failure: Exception | None = None
        try:
            fn.get_concrete_function(*probe, self.graph_args)
        except Exception as exc:
            if self.jit is True:
                raise
            failure = exc
        if failure is None:
            self.compiled[name] = fn
            return
        reason = _reason(failure)
        del failure  # its traceback holds the failed graph
        body(*probe, self.args)  # an error here is loss_fn's own: it propagates unchanged
        self.eager = True  # the bodies prepared after this one run eagerly too, without a try
        warnings.warn(
            f"minimize_model: loss_fn cannot be traced by tf.function ({reason}), so it runs "
            "eagerly, which is slower. Pass jit=False to run eagerly without trying, or "
            "jit=True to see the full error",
            UserWarning,
            stacklevel=3,
        )

    def call(self, name: str, *inputs: Any) -> Any:
        fn = self.compiled.get(name)
        if fn is None:
            return getattr(self, f"{name}_body")(*inputs, self.args)
        return fn(*inputs, self.graph_args)


def minimize_model(
    model: Any,
    loss_fn: Callable[..., Any],
    *,
    variables: Iterable[Any] | Callable[[str, Any], bool] | None = None,
    args: Any = (),
    method: str | Callable | None = None,
    hess: Any = None,
    hessp: str | Callable | None = None,
    constraints: Any = (),
    lb_dict: Mapping[str, Any] | None = None,
    ub_dict: Mapping[str, Any] | None = None,
    tol: float | None = None,
    callback: Callable | None = None,
    options: Mapping[str, Any] | None = None,
    jit: bool | None = None,
    nonfinite: str = "inf",
    blas_threads: int | None = None,
    trace: bool | str = False,
    progress: bool | Mapping[str, Any] = False,
    time_limit: float | None = None,
    threads: int | str | None = "auto",
    **refused: Any,
) -> OptimizeResult:
    """Fit a Keras 3 or TensorFlow model's variables with ``scipy.optimize.minimize``, in place.

    The selected variables are the parameters, keyed by their paths: a Keras 3 variable's
    ``variable.path`` (``"sequential/dense/kernel"``), a plain ``tf.Variable``'s name without
    the ``":0"`` (``"w"``). At every evaluation SciPy's point is assigned into those same
    Variable objects and ``loss_fn(model, *args)`` runs under a ``tf.GradientTape``, compiled
    with ``tf.function`` when it can be traced. When the call returns, the variables hold the
    solution, so the model, and any optimizer already built on its variables, go on with it.

    Args:
        model: a Keras 3 model or layer (TensorFlow backend), a ``tf.Module``, or anything with
            ``trainable_variables``.
        loss_fn: ``loss_fn(model, *args)`` returns a scalar floating ``tf.Tensor`` computed
            with TensorFlow (or Keras) operations from the model's variables.
        variables: what to optimize. None (the default): ``model.trainable_variables``; else
            variables (``layer.kernel``), their paths (``"sequential/dense/bias"``), or a
            predicate ``(path, variable) -> bool`` over the trainable variables. Variables
            that are not selected, and non-trainable ones, are constants and stay unchanged;
            selecting a non-trainable variable by name or object is a ``ValueError``.
        args: extra positional arguments for ``loss_fn`` (and for ``hess``/``hessp``
            callables). For the compiled function, NumPy arrays are converted to tensors once
            (floating ones to the variables' dtype when they share one, as Keras's ``fit``
            converts its data) and passed as inputs, not baked into its graph.
        method: any ``scipy.optimize.minimize`` method name, or a custom callable; by default
            SLSQP with constraints, L-BFGS-B with bounds, BFGS otherwise.
        hess: for methods that use one: a callable ``hess(x_dict, *args)`` or SciPy's
            ``'2-point'``/``'3-point'``/``HessianUpdateStrategy``. There is no dense autodiff
            Hessian, so dogleg and trust-exact need one of these.
        hessp: by default Newton-CG, trust-ncg, trust-krylov and trust-constr get exact
            Hessian-vector products from nested tapes (``'autodiff'`` asks for them
            explicitly); or a callable ``hessp(x_dict, p_dict, *args) -> dict``.
        constraints: as in :func:`dict_minimize.minimize`: constraint functions get the dict of
            values keyed by path (not the model).
        lb_dict: lower bounds keyed by path: any subset of the keys, scalars broadcast.
        ub_dict: upper bounds, the same way.
        tol: tolerance for termination, as in SciPy.
        callback: ``callback(x_dict)`` or ``callback(intermediate_result)``, as in
            :func:`dict_minimize.minimize` (the dict of values keyed by path).
        options: method options, passed to SciPy.
        jit: None (the default) compiles with ``tf.function`` and, if ``loss_fn`` cannot be
            traced (it calls ``.numpy()``, branches in Python on a tensor...), runs eagerly
            after a ``UserWarning`` giving the reason; True compiles (tracing errors
            propagate); False runs eagerly.
        nonfinite: ``'inf'`` or ``'raise'``, as in :func:`dict_minimize.minimize`.
        blas_threads: the older name of ``threads``, as in :func:`dict_minimize.minimize`.
        trace: as in :func:`dict_minimize.minimize` (``res.trace``; with ``'x'`` the points
            are keyed by the variables' paths).
        progress: as in :func:`dict_minimize.minimize`.
        time_limit: as in :func:`dict_minimize.minimize`.
        threads: as in :func:`dict_minimize.minimize` (TensorFlow's own threads are fixed
            when it starts: only the BLAS libraries are capped).
        **refused: ``jac`` and ``backend`` are not accepted (the gradient comes from the tape,
            the backend is TensorFlow): ``TypeError``.

    Returns:
        OptimizeResult: as :func:`dict_minimize.minimize`'s; ``x`` maps each path to a tensor
        copy of the solution (the variables hold the same values, in their dtype).

    Raises:
        KeyError: a name in ``variables`` that is no variable of the model (the message lists
            the paths).
        ValueError: an empty selection, a non-trainable variable selected, two variables with
            the same key, or a method that needs a dense Hessian without ``hess``.
        TypeError: ``jac=``, or arguments of the wrong kind.
        Exception: whatever ``loss_fn`` raises propagates, with the best point so far assigned
            to the variables and attached as ``exc.dict_minimize_result``. A
            ``KeyboardInterrupt`` during the solve returns the best point seen (assigned).

    Example:
        >>> import numpy as np, tensorflow as tf
        >>> from dict_minimize.tensorflow_api import minimize_model
        >>> class Line(tf.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.w = tf.Variable(0.0, dtype=tf.float64, name="w")
        ...         self.b = tf.Variable(0.0, dtype=tf.float64, name="b")
        >>> x = np.linspace(0.0, 1.0, 11)
        >>> def loss(m, x, y):
        ...     return tf.reduce_mean((m.w * x + m.b - y) ** 2)
        >>> line = Line()
        >>> res = minimize_model(line, loss, args=(x, 2 * x + 1))
        >>> sorted(res.x), round(float(line.w), 6), round(float(line.b), 6)
        (['b', 'w'], 2.0, 1.0)
    """
    for name in refused:
        if name == "jac":
            raise TypeError(
                "minimize_model takes no jac: the gradient comes from a tf.GradientTape over "
                "loss_fn. For your own derivatives call dict_minimize.minimize on a dict"
            )
        if name == "backend":
            raise TypeError("minimize_model takes no backend: it is always TensorFlow")
        raise TypeError(f"minimize_model() got an unexpected keyword argument {name!r}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable; got a {type_name(loss_fn)}")
    if jit is not None and not isinstance(jit, bool):
        raise TypeError(f"jit must be None, True or False; got a {type_name(jit)}")
    args = tuple(args) if isinstance(args, (list, tuple)) else (args,)
    meth = method.lower() if isinstance(method, str) else None
    if isinstance(hess, str) and hess == "autodiff":
        raise ValueError(
            "minimize_model has no dense autodiff Hessian: use a method that takes Hessian-"
            "vector products (trust-krylov, trust-ncg, Newton-CG, trust-constr; exact ones by "
            "default), or hess=<callable>"
        )
    if meth in NEEDS_HESS and hess is None:
        raise ValueError(
            f"method {method!r} needs a dense Hessian, which minimize_model does not build: "
            "use trust-krylov, trust-ncg or Newton-CG (exact Hessian-vector products), or "
            "pass hess=<callable>"
        )

    sel = _select(model, variables)
    keys = sel.keys
    x0 = {k: tf.identity(v) for k, v in zip(keys, sel.tf_vars, strict=True)}
    program = _Program(model, loss_fn, sel, args, jit)
    probe = [x0[k] for k in keys]
    gradient_free = meth in GRADIENT_FREE

    def fun(x_dict: Mapping, *_: Any) -> Any:
        values = [x_dict[k] for k in keys]
        if gradient_free:
            return program.call("value", values)
        loss, grads = program.call("pair", values)
        return loss, dict(zip(keys, grads, strict=True))

    def exact_hessp(x_dict: Mapping, p_dict: Mapping, *_: Any) -> dict:
        out = program.call("hvp", [x_dict[k] for k in keys], [p_dict[k] for k in keys])
        return dict(zip(keys, out, strict=True))

    asked = isinstance(hessp, str) and hessp == "autodiff"
    if asked or (hessp is None and hess is None and meth in TAKES_HESSP):
        hessp = exact_hessp
    try:
        program.prepare("value" if gradient_free else "pair", (probe,))
        if hessp is exact_hessp:
            program.prepare("hvp", (probe, [tf.zeros_like(p) for p in probe]))
        res = minimize(
            fun,
            x0,
            args=args,
            method=method,
            jac=not gradient_free,
            hess=hess,
            hessp=hessp,
            constraints=constraints,
            lb_dict=lb_dict,
            ub_dict=ub_dict,
            tol=tol,
            callback=callback,
            options=options,
            backend="tensorflow",
            jit=None,  # fun is not a tf.function: minimize does not compile it again
            nonfinite=nonfinite,
            blas_threads=blas_threads,
            threads=threads,
            trace=trace,
            progress=progress,
            time_limit=time_limit,
        )
    except BaseException as exc:
        best = getattr(exc, "dict_minimize_result", None)
        _assign_dict(sel, best.x if best is not None else x0)
        raise
    _assign_dict(sel, res.x)
    return res


def _assign_dict(sel: _Selected, values: Mapping[str, Any]) -> None:
    for key, var in zip(sel.keys, sel.tf_vars, strict=True):
        var.assign(values[key])


__all__ = ["minimize_model"]
