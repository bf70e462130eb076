"""A persistent benchmark worker: one framework, one package (ours or the original 0.0.4).

The orchestrator (``benchmarks/run.py``) starts one worker per (framework, package) and sends it
JSON lines on stdin: ``setup`` (build a problem and its contenders, run each once to warm up and
compile), ``run`` (one timed solve of one contender), ``teardown``, ``exit``. Answers are JSON
lines on the original stdout; anything else the frameworks print goes to stderr.

The original package has the same top-level name as ours, so its worker puts the scratch folder
it was pip-installed into first on ``sys.path`` (``--orig-path``) before anything imports
``dict_minimize``, and reports the file it imported.

Timing, per solve (the solve's wall time is ``total``):

- ``in_fun``: time inside the function SciPy calls (``scipy.optimize.minimize`` is wrapped in
  this process, and the original package's imported copy of it too), so SciPy's own time is
  ``total - in_fun``;
- ``objective``: time inside the user's objective (for JAX, until its results are ready), so
  the bridge's own time is ``in_fun - objective``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize

from benchmarks import problems as P

#: contenders each package offers per framework (the floor only from our NumPy worker)
OURS = ("floor", "glue", "ours-dropin", "ours-generic", "ours-autodiff", "torch-lbfgs", "adam")
ORIG = ("orig",)
#: Adam: steps and learning rate per problem (fixed, not tuned per run)
ADAM = {"calibration": (300, 0.05), "mlp": (1000, 0.01)}


@dataclass
class Stats:
    """What the wrapped ``scipy.optimize.minimize`` and the timed objective saw in one solve."""

    in_fun: float = 0.0
    calls: int = 0
    objective: float = 0.0
    res: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def reset(self) -> None:
        self.in_fun, self.calls, self.objective, self.res = 0.0, 0, 0.0, None
        self.extra = {}


STATS = Stats()
_REAL_MINIMIZE = scipy.optimize.minimize


def timed_scipy_minimize(fun: Callable, x0: Any, *args: Any, **kwargs: Any) -> Any:
    """``scipy.optimize.minimize`` that times the function it is given."""

    def timed(x: np.ndarray, *a: Any) -> Any:
        t = time.perf_counter()
        try:
            return fun(x, *a)
        finally:
            STATS.in_fun += time.perf_counter() - t
            STATS.calls += 1

    res = _REAL_MINIMIZE(timed, x0, *args, **kwargs)
    STATS.res = res
    return res


# --- frameworks ------------------------------------------------------------------------------


@dataclass
class Framework:
    """How this worker makes tensors, differentiates a loss and writes its hand glue."""

    name: str
    tensor: Callable[[np.ndarray], Any]
    ops: P.Ops | None
    sync: Callable[[Any], Any]
    dict_vg: Callable[[P.Problem], Callable]  # the user's (value, grad dict) objective
    glue: Callable[[P.Problem, tuple], Callable[[np.ndarray], tuple[float, np.ndarray]]]
    #: the framework compiles (JAX, TF): ours-generic passes the user's compiled function as is
    compiles: bool = False
    #: how a careful user of the framework writes a value-only loss (TF: a tf.function)
    compile_loss: Callable[[Callable], Callable] = lambda f: f


def _numpy() -> Framework:
    def dict_vg(prob: P.Problem) -> Callable:
        return prob.numpy_vg

    def glue(prob: P.Problem, data: tuple) -> Callable:
        keys, split, vg = prob.keys, prob.split, timed_objective(prob.numpy_vg, _no_sync)
        dtype = np.dtype(prob.dtype)

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, grads = vg(split(x.astype(dtype, copy=False)), *data)
            return float(value), np.concatenate([np.ravel(grads[k]) for k in keys], dtype=float)

        return fun

    return Framework("numpy", lambda a: a.copy(), None, _no_sync, dict_vg, glue)


def _torch() -> Framework:
    import torch

    ops = P.Ops(
        torch.sum, torch.mean, torch.stack, torch.cat, torch.tanh, torch.nn.functional.softplus
    )

    def dict_vg(prob: P.Problem) -> Callable:
        def vg(d: Any, *data: Any) -> tuple[Any, dict]:
            loss = prob.loss(d, *data, ops)
            grads = torch.autograd.grad(loss, list(d.values()))
            return loss, OrderedDict(zip(d.keys(), grads, strict=True))

        return vg

    def glue(prob: P.Problem, data: tuple) -> Callable:
        keys = prob.keys
        sizes = [v.size for v in prob.x0.values()]
        shapes = [v.shape for v in prob.x0.values()]
        dtype = getattr(torch, prob.dtype)

        def inner(d: Any, *data: Any) -> tuple[Any, tuple]:
            loss = prob.loss(d, *data, ops)
            return loss, torch.autograd.grad(loss, list(d.values()))

        vg = timed_objective(inner, _no_sync)

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            flat = torch.from_numpy(x).to(dtype).requires_grad_()
            views = [p.view(s) for p, s in zip(flat.split(sizes), shapes, strict=True)]
            loss, grads = vg(OrderedDict(zip(keys, views, strict=True)), *data)
            g = torch.cat([g.reshape(-1) for g in grads])
            return loss.item(), g.to(torch.float64).numpy()

        return fun

    return Framework("torch", lambda a: torch.from_numpy(a.copy()), ops, _no_sync, dict_vg, glue)


def _jax() -> Framework:
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    jax.config.update("jax_enable_x64", True)
    ops = P.Ops(jnp.sum, jnp.mean, jnp.stack, jnp.concatenate, jnp.tanh, jax.nn.softplus)

    def dict_vg(prob: P.Problem) -> Callable:
        return jax.jit(jax.value_and_grad(lambda d, *data: prob.loss(d, *data, ops)))

    def glue(prob: P.Problem, data: tuple) -> Callable:
        tree = OrderedDict((k, jnp.asarray(v)) for k, v in prob.x0.items())
        _, unravel = ravel_pytree(tree)
        inner = jax.jit(jax.value_and_grad(lambda f, *data: prob.loss(unravel(f), *data, ops)))
        vg = timed_objective(inner, jax.block_until_ready)
        dtype = jnp.dtype(prob.dtype)

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, g = vg(jnp.asarray(x, dtype=dtype), *data)
            return float(value), np.asarray(g, dtype=np.float64)

        return fun

    return Framework("jax", jnp.asarray, ops, jax.block_until_ready, dict_vg, glue, compiles=True)


def _tensorflow() -> Framework:
    import tensorflow as tf

    ops = P.Ops(
        tf.reduce_sum,
        tf.reduce_mean,
        tf.stack,
        lambda xs: tf.concat(xs, 0),
        tf.tanh,
        tf.nn.softplus,
    )

    def dict_vg(prob: P.Problem) -> Callable:
        keys = prob.keys

        @tf.function
        def vg(d: Any, *data: Any) -> tuple[Any, dict]:
            values = [d[k] for k in keys]
            with tf.GradientTape() as tape:
                tape.watch(values)
                loss = prob.loss(d, *data, ops)
            return loss, OrderedDict(zip(keys, tape.gradient(loss, values), strict=True))

        return vg

    def glue(prob: P.Problem, data: tuple) -> Callable:
        keys = prob.keys
        sizes = [v.size for v in prob.x0.values()]
        shapes = [list(v.shape) for v in prob.x0.values()]
        dtype = getattr(tf, prob.dtype)

        @tf.function
        def inner(flat: Any, *data: Any) -> tuple[Any, Any]:
            with tf.GradientTape() as tape:
                tape.watch(flat)
                parts = tf.split(flat, sizes) if len(sizes) > 1 else [flat]
                d = {k: tf.reshape(p, s) for k, p, s in zip(keys, parts, shapes, strict=True)}
                loss = prob.loss(d, *data, ops)
            return loss, tape.gradient(loss, flat)

        vg = timed_objective(inner, _no_sync)

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, g = vg(tf.constant(x, dtype=dtype), *data)
            return float(value), g.numpy().astype(np.float64)

        return fun

    return Framework(
        "tensorflow",
        tf.constant,
        ops,
        _no_sync,
        dict_vg,
        glue,
        compiles=True,
        compile_loss=tf.function,
    )


FRAMEWORKS = {"numpy": _numpy, "torch": _torch, "jax": _jax, "tensorflow": _tensorflow}


def _no_sync(out: Any) -> Any:
    return out


def timed_objective(fun: Callable, sync: Callable[[Any], Any]) -> Callable:
    """``fun`` that adds its wall time (until ``sync`` says the results are ready) to STATS."""

    def timed(*args: Any) -> Any:
        t = time.perf_counter()
        out = sync(fun(*args))
        STATS.objective += time.perf_counter() - t
        return out

    return timed


# --- contenders ------------------------------------------------------------------------------


def _scipy_result(total: float) -> dict[str, Any]:
    res = STATS.res
    out = {"total": total, "in_fun": STATS.in_fun, "objective": STATS.objective}
    out["nfev"] = int(res.nfev) if res is not None else STATS.calls
    if res is not None:
        out.update(
            nit=int(res.nit), fun=float(res.fun), success=bool(res.success), message=res.message
        )
    out.update(STATS.extra)
    return out


class Bench:
    """The contenders of one problem in this worker's framework and package."""

    def __init__(self, fw: Framework, package: Any, prob: P.Problem, scale: str) -> None:
        self.fw, self.pkg, self.prob, self.scale = fw, package, prob, scale
        self.data = tuple(fw.tensor(a) for a in prob.data)
        self.x0 = OrderedDict((k, fw.tensor(v)) for k, v in prob.x0.items())
        self.user_vg_raw = fw.dict_vg(prob)
        self.user_vg = timed_objective(self.user_vg_raw, fw.sync)
        ops = fw.ops
        self.value_only = (
            fw.compile_loss(lambda d, *data: prob.loss(d, *data, ops)) if ops else None
        )
        self.x0_flat = prob.flat_x0()
        self.bounds = prob.flat_bounds()
        self.options = dict(prob.options)
        self._glue: Callable | None = None

    def runner(self, name: str) -> Callable[[], dict[str, Any]]:
        method = getattr(self, "run_" + name.replace("-", "_"), None)
        if method is None:
            raise ValueError(f"unknown contender {name!r}")
        return method

    def _solve(self, call: Callable[[], Any]) -> dict[str, Any]:
        STATS.reset()
        gc.collect()
        t = time.perf_counter()
        call()
        return _scipy_result(time.perf_counter() - t)

    def _flat_solve(self, fun: Callable) -> dict[str, Any]:
        return self._solve(
            lambda: scipy.optimize.minimize(
                fun,
                self.x0_flat,
                jac=True,
                method=self.prob.method,
                bounds=self.bounds,
                options=self.options,
            )
        )

    def run_floor(self) -> dict[str, Any]:
        if self.fw.name != "numpy":
            raise ValueError("the floor runs in the NumPy worker")
        vg = timed_objective(self.prob.flat_vg, _no_sync)
        data = self.prob.data
        return self._flat_solve(lambda x: vg(x, *data))

    def run_glue(self) -> dict[str, Any]:
        if self._glue is None:
            self._glue = self.fw.glue(self.prob, self.data)
        return self._flat_solve(self._glue)

    def _ours_kwargs(self) -> dict[str, Any]:
        return {
            "args": self.data,
            "method": self.prob.method,
            "lb_dict": self.prob.lb,
            "options": self.options,
        }

    def run_ours_dropin(self) -> dict[str, Any]:
        api = __import__(f"dict_minimize.{self.fw.name}_api", fromlist=["minimize"])
        return self._solve(lambda: api.minimize(self.user_vg, self.x0, **self._ours_kwargs()))

    def run_ours_generic(self) -> dict[str, Any]:
        from dict_minimize import minimize

        # JAX/TF: the user's jax.jit / tf.function as is (compiled with the split; a timing
        # wrapper would hide it), so the objective's own time is not separable here
        fun = self.user_vg_raw if self.fw.compiles else self.user_vg
        return self._solve(lambda: minimize(fun, self.x0, **self._ours_kwargs()))

    def run_ours_autodiff(self) -> dict[str, Any]:
        from dict_minimize import minimize

        if self.value_only is None:
            raise ValueError("no autodiff for NumPy")
        fun = self.value_only
        return self._solve(lambda: minimize(fun, self.x0, jac="autodiff", **self._ours_kwargs()))

    def run_orig(self) -> dict[str, Any]:
        api = __import__(f"dict_minimize.{self.fw.name}_api", fromlist=["minimize"])
        bounds = {}
        if self.prob.lb is not None:
            lo = OrderedDict(
                (k, self.fw.tensor(np.full(v.shape, self.prob.lb.get(k, -np.inf), v.dtype)))
                for k, v in self.prob.x0.items()
            )
            hi = OrderedDict(
                (k, self.fw.tensor(np.full(v.shape, np.inf, v.dtype)))
                for k, v in self.prob.x0.items()
            )
            bounds = {"lb_dict": lo, "ub_dict": hi}
        return self._solve(
            lambda: api.minimize(
                self.user_vg,
                self.x0,
                args=self.data,
                method=self.prob.method,
                options=self.options,
                **bounds,
            )
        )

    def _torch_params(self) -> list[Any]:
        import torch

        return [torch.tensor(v, requires_grad=True) for v in self.prob.x0.values()]

    def _torch_loss(self, params: list[Any]) -> Any:
        d = OrderedDict(zip(self.prob.keys, params, strict=True))
        return self.prob.loss(d, *self.data, self.fw.ops)

    def run_torch_lbfgs(self) -> dict[str, Any]:
        import torch

        if self.fw.name != "torch" or self.prob.name not in P.OWN_OPTIMIZERS:
            raise ValueError("torch.optim.LBFGS runs on calibration and mlp in PyTorch")
        params = self._torch_params()
        maxiter = self.options["maxiter"]
        opt = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=maxiter,
            max_eval=maxiter * 5 // 4,
            history_size=10,
            line_search_fn="strong_wolfe",
        )
        calls = [0]

        def closure() -> Any:
            opt.zero_grad()
            loss = timed_objective(self._torch_loss, _no_sync)(params)
            loss.backward()
            calls[0] += 1
            return loss

        STATS.reset()
        t = time.perf_counter()
        opt.step(closure)
        total = time.perf_counter() - t
        with torch.no_grad():
            fun = float(self._torch_loss(params))
        state = opt.state[opt._params[0]]
        return {
            "total": total,
            "objective": STATS.objective,
            "in_fun": None,
            "nfev": calls[0],
            "nit": int(state.get("n_iter", 0)),
            "fun": fun,
            "success": True,
        }

    def run_adam(self) -> dict[str, Any]:
        import torch

        if self.fw.name != "torch" or self.prob.name not in P.OWN_OPTIMIZERS:
            raise ValueError("Adam runs on calibration and mlp in PyTorch")
        steps, lr = ADAM[self.prob.name]
        if self.scale == "tiny":
            steps = 5
        params = self._torch_params()
        opt = torch.optim.Adam(params, lr=lr)
        STATS.reset()
        t = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            loss = timed_objective(self._torch_loss, _no_sync)(params)
            loss.backward()
            opt.step()
        total = time.perf_counter() - t
        with torch.no_grad():
            fun = float(self._torch_loss(params))
        return {
            "total": total,
            "objective": STATS.objective,
            "in_fun": None,
            "nfev": steps,
            "nit": steps,
            "fun": fun,
            "success": True,
        }


# --- the worker loop -------------------------------------------------------------------------


def _versions(fw: str, package: Any) -> dict[str, str]:
    out = {"numpy": np.__version__, "scipy": scipy.__version__, "python": sys.version.split()[0]}
    if fw != "numpy":
        out[fw] = str(__import__(fw).__version__)
    out["dict_minimize"] = str(getattr(package, "__version__", "?"))
    return out


def _probe_autodiff(fw: Framework) -> str | None:
    """None when ``jac='autodiff'`` works on a tiny problem, else why not."""
    if fw.ops is None:
        return "NumPy has no autodiff"
    try:
        from dict_minimize import minimize

        x0 = {"a": fw.tensor(np.zeros(2)), "b": fw.tensor(np.ones(3))}
        res = minimize(
            lambda d: fw.ops.sum((d["a"] - 1.0) ** 2) + fw.ops.sum(d["b"] ** 2),  # type: ignore[union-attr]
            x0,
            jac="autodiff",
        )
        if not res.success:
            return f"jac='autodiff' did not converge on a tiny problem: {res.message}"
    except Exception as exc:
        return f"jac='autodiff' failed: {type(exc).__name__}: {exc}"
    return None


def _limit_scipy_blas(threads: int) -> Any:
    """Cap the BLAS libraries SciPy ships at ``threads`` for this worker's life (for every
    contender alike; the objective's NumPy keeps its threads)."""
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS)
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas")
    paths = [
        lib.filepath
        for lib in blas.lib_controllers
        if os.path.basename(os.path.dirname(lib.filepath)).startswith("scipy")
    ]
    return blas.select(filepath=paths).limit(limits=threads) if paths else None


def serve(fw_name: str, package: str, orig_path: str | None, blas_threads: int | None) -> None:
    proto = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # frameworks' chatter must not corrupt the protocol
    if package == "orig":
        if not orig_path:
            raise SystemExit("--orig-path is required for the original package")
        sys.path.insert(0, orig_path)
    import dict_minimize

    pkg_file = os.path.abspath(dict_minimize.__file__)
    if package == "orig":
        if not pkg_file.startswith(os.path.abspath(orig_path or "")):
            raise SystemExit(f"imported the wrong dict_minimize: {pkg_file}")
        import dict_minimize.core._scipy as orig_core

        orig_core.scipy_minimize = timed_scipy_minimize  # type: ignore[attr-defined]
    scipy.optimize.minimize = timed_scipy_minimize
    limiter = _limit_scipy_blas(blas_threads) if blas_threads else None
    fw = FRAMEWORKS[fw_name]()
    hello = {
        "ready": True,
        "framework": fw_name,
        "package": package,
        "package_file": pkg_file,
        "versions": _versions(fw_name, dict_minimize),
        "autodiff": _probe_autodiff(fw) if package == "ours" else "n/a",
        "blas_threads": blas_threads,
    }
    proto.write(json.dumps(hello) + "\n")
    bench: Bench | None = None
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg["cmd"]
        try:
            if cmd == "exit":
                break
            if cmd == "setup":
                bench = None
                gc.collect()
                prob = P.build(msg["problem"], msg["dtype"], msg["scale"])
                bench = Bench(fw, dict_minimize, prob, msg["scale"])
                errors = {}
                for name in msg["contenders"]:
                    try:
                        t = time.perf_counter()
                        bench.runner(name)()  # warm up: compile, trace, caches
                        errors[name] = {"ok": True, "first": time.perf_counter() - t}
                    except Exception as exc:
                        errors[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                        traceback.print_exc()
                reply: dict[str, Any] = {"ok": True, "contenders": errors}
            elif cmd == "run":
                assert bench is not None
                reply = {"ok": True, "result": bench.runner(msg["contender"])()}
            elif cmd == "teardown":
                bench = None
                gc.collect()
                reply = {"ok": True}
            else:
                reply = {"ok": False, "error": f"unknown command {cmd!r}"}
        except Exception as exc:
            traceback.print_exc()
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        proto.write(json.dumps(reply, default=_jsonable) + "\n")
    del limiter


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return str(obj)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", required=True, choices=sorted(FRAMEWORKS))
    parser.add_argument("--package", default="ours", choices=["ours", "orig"])
    parser.add_argument("--orig-path", default=None)
    parser.add_argument("--blas-threads", type=int, default=None)
    args = parser.parse_args(argv)
    serve(args.framework, args.package, args.orig_path, args.blas_threads)


if __name__ == "__main__":
    main()
