"""One bounded Rosenbrock problem, solved in every installed framework, printed as a table;
then L-BFGS-B against Adam and SGD on the same budget of gradient evaluations, with figures.

The problem: the Rosenbrock function in ``--size`` dimensions (default 6), its vector split over
two dict keys -- ``"a"``, a 1-D entry, and ``"b"``, a 2-D entry of shape ``(2, (size - 1) // 2)``
-- started from the classic point (-1.2, 1, -1.2, 1, ...), with the upper bound ``b <= 2``
(given as ``ub_dict``; inactive at the solution, so the minimizer is x* = 1 everywhere).

Each installed framework solves it with L-BFGS-B through the generic
:func:`dict_minimize.minimize`, computing the gradient with its own autodiff:

- NumPy (always): the analytic gradient, ``scipy.optimize.rosen_der``, in float64;
- PyTorch: ``torch.autograd.grad``, float64;
- JAX: ``jax.jit(jax.value_and_grad(...))``, float32 (the demo never enables x64);
- TensorFlow: ``tf.GradientTape``, float64.

Frameworks that are not installed are skipped (detected with ``importlib.util.find_spec``,
without importing them). Wall time covers the ``minimize`` call only (the best of ``--repeat``
runs); one evaluation of the objective before it absorbs JIT compilation and first-call
overheads. SciPy's L-BFGS-B makes many tiny BLAS calls, which a multi-threaded OpenBLAS can slow
down by orders of magnitude on a busy machine; ``minimize``'s default (``threads="auto"``) runs
problems this small on one thread, and the demo prints the setting it used.
``--blas-threads N`` also limits BLAS to N threads around the solves (default 0: leave it to
``minimize``; needs ``threadpoolctl``, ignored without it). A solve
passes when SciPy reports success and max |x - x*| is within the tolerance of its dtype (1e-4 for
float64, 1e-2 for float32); the command exits with status 1 if any fails.

Then :mod:`dict_minimize._demo_compare` runs :func:`dict_minimize.compare` on the 2-D
Rosenbrock function (L-BFGS-B, BFGS, and with PyTorch installed Adam at three learning rates and
SGD; ``--budget`` gradient evaluations each), prints the table, and saves ``convergence.png`` and
``paths.png`` under ``--out`` (with matplotlib installed).

Usage::

    python -m dict_minimize.demo
    python -m dict_minimize.demo --size 20 --frameworks numpy,torch --repeat 5
    python -m dict_minimize.demo --budget 100 --out /tmp/figures

Programmatic use:

    >>> from dict_minimize.demo import make_problem
    >>> problem = make_problem(6)
    >>> problem.shapes
    {'a': (2,), 'b': (2, 2)}
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import rosen, rosen_der

from dict_minimize import minimize

#: the frameworks the demo knows, in the order they are tried
FRAMEWORKS = ("numpy", "torch", "jax", "tensorflow")
METHOD = "L-BFGS-B"
#: upper bound on every entry of "b" (inactive at x* = 1)
UPPER_B = 2.0
#: pass if max |x - x*| is at most this, by dtype of the framework's arrays
TOLERANCE = {"float64": 1e-4, "float32": 1e-2}
#: L-BFGS-B options by dtype: tight for float64, looser where float32 rounding stops progress
OPTIONS: dict[str, dict[str, Any]] = {
    "float64": {"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10_000},
    "float32": {"ftol": 1e-10, "gtol": 1e-6, "maxiter": 10_000},
}


def is_installed(framework: str) -> bool:
    """Whether ``framework`` can be imported (checked without importing it)."""
    return importlib.util.find_spec(framework) is not None


@dataclass(frozen=True)
class Problem:
    """Rosenbrock in ``size`` dimensions over the dict keys ``"a"`` (1-D) and ``"b"`` (2-D)."""

    size: int
    shapes: dict[str, tuple[int, ...]]
    #: the starting point, per key, in float64
    x0: dict[str, np.ndarray]
    #: the minimizer (all ones), per key
    x_star: dict[str, np.ndarray]
    ub: dict[str, float]


def make_problem(size: int = 6) -> Problem:
    """The demo problem in ``size >= 3`` dimensions."""
    if size < 3:
        raise ValueError(f"size must be at least 3 (one entry for 'a', two for 'b'); got {size}")
    cols = (size - 1) // 2
    shapes = {"a": (size - 2 * cols,), "b": (2, cols)}
    flat0 = np.where(np.arange(size) % 2 == 0, -1.2, 1.0)
    x0 = _split(flat0, shapes)
    x_star = _split(np.ones(size), shapes)
    return Problem(size=size, shapes=shapes, x0=x0, x_star=x_star, ub={"b": UPPER_B})


def _split(flat: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    n_a = int(np.prod(shapes["a"]))
    return {"a": flat[:n_a].reshape(shapes["a"]), "b": flat[n_a:].reshape(shapes["b"])}


def _rosen_any(x: Any) -> Any:
    """Rosenbrock of a 1-D tensor, in operations every framework shares."""
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


# --- per framework: the objective fun(x_dict) -> (value, grad_dict) and the starting dict -------


def _numpy_setup(problem: Problem) -> tuple[Callable, dict[str, Any]]:
    def fun(d: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        x = np.concatenate([d["a"].ravel(), d["b"].ravel()])
        return float(rosen(x)), _split(rosen_der(x), problem.shapes)

    return fun, {k: v.copy() for k, v in problem.x0.items()}


def _torch_setup(problem: Problem) -> tuple[Callable, dict[str, Any]]:
    import torch

    def fun(d: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = torch.cat([d["a"].reshape(-1), d["b"].reshape(-1)])
        value = _rosen_any(x)
        grad_a, grad_b = torch.autograd.grad(value, [d["a"], d["b"]])
        return value, {"a": grad_a, "b": grad_b}

    x0 = {k: torch.tensor(v, dtype=torch.float64) for k, v in problem.x0.items()}
    return fun, x0


def _jax_setup(problem: Problem) -> tuple[Callable, dict[str, Any]]:
    import jax
    import jax.numpy as jnp

    def value(d: dict[str, jax.Array]) -> jax.Array:
        return _rosen_any(jnp.concatenate([d["a"].reshape(-1), d["b"].reshape(-1)]))

    fun = jax.jit(jax.value_and_grad(value))
    x0 = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in problem.x0.items()}
    return fun, x0


def _tensorflow_setup(problem: Problem) -> tuple[Callable, dict[str, Any]]:
    import tensorflow as tf

    def fun(d: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        with tf.GradientTape() as tape:
            tape.watch([d["a"], d["b"]])
            x = tf.concat([tf.reshape(d["a"], [-1]), tf.reshape(d["b"], [-1])], axis=0)
            value = tf.reduce_sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
        grad_a, grad_b = tape.gradient(value, [d["a"], d["b"]])
        return value, {"a": grad_a, "b": grad_b}

    x0 = {k: tf.constant(v, dtype=tf.float64) for k, v in problem.x0.items()}
    return fun, x0


_SETUPS: dict[str, Callable[[Problem], tuple[Callable, dict[str, Any]]]] = {
    "numpy": _numpy_setup,
    "torch": _torch_setup,
    "jax": _jax_setup,
    "tensorflow": _tensorflow_setup,
}


# --- solving and reporting ---------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table."""

    framework: str
    dtype: str = "-"
    method: str = METHOD
    success: bool = False
    fun: float = float("nan")
    nit: int = 0
    nfev: int = 0
    max_err: float = float("nan")
    seconds: float = float("inf")
    error: str | None = None

    @property
    def ok(self) -> bool:
        """SciPy reported success and the solution is within the dtype's tolerance of x*."""
        tol = TOLERANCE.get(self.dtype)
        return self.error is None and self.success and tol is not None and bool(self.max_err <= tol)


def _dtype_name(value: Any) -> str:
    dtype = value.dtype
    name = getattr(dtype, "name", None)  # numpy, jax and tf dtypes
    return str(name) if name is not None else str(dtype).removeprefix("torch.")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu()
    return np.asarray(value, dtype=np.float64)


def _warm_up(framework: str, fun: Callable, x0: dict[str, Any]) -> None:
    """One evaluation, so JIT compilation and first-call overheads stay out of the timing."""
    if framework == "torch":  # torch.autograd.grad needs leaves that require grad
        x0 = {k: v.detach().clone().requires_grad_(True) for k, v in x0.items()}
    fun(x0)


def solve(framework: str, problem: Problem, repeat: int = 1) -> Row:
    """Solve ``problem`` in ``framework``; errors are caught and reported in the row.

    With ``repeat > 1`` the solve runs that many times and the row keeps the best wall time.
    """
    row = Row(framework)
    try:
        fun, x0 = _SETUPS[framework](problem)
        row.dtype = _dtype_name(x0["a"])
        _warm_up(framework, fun, x0)
        for _ in range(max(repeat, 1)):
            start = time.perf_counter()
            res = minimize(
                fun, x0, method=METHOD, ub_dict=problem.ub, options=OPTIONS.get(row.dtype)
            )
            row.seconds = min(row.seconds, time.perf_counter() - start)
    except Exception as exc:  # a demo reports every failure in its table and carries on
        row.error = f"{type(exc).__name__}: {exc}"
        return row
    row.success, row.fun, row.nit, row.nfev = bool(res.success), res.fun, res.nit, res.nfev
    row.max_err = max(
        float(np.max(np.abs(_to_numpy(res.x[k]) - problem.x_star[k]), initial=0.0))
        for k in problem.shapes
    )
    if not row.success:
        row.error = f"SciPy: {res.message}"
    return row


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS to ``n`` threads inside the block (no-op for None or without threadpoolctl)."""
    if n is None or not is_installed("threadpoolctl"):
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


def run(
    size: int = 6,
    frameworks: Sequence[str] = FRAMEWORKS,
    repeat: int = 1,
    blas: int | None = None,
    *,
    on_row: Callable[[Row], None] | None = None,
    status: Callable[[str], None] | None = None,
) -> tuple[list[Row], list[str]]:
    """Solve the problem in each of ``frameworks`` that is installed.

    ``blas`` limits BLAS threads during the solves (None: leave them as they are). ``on_row``
    gets each row as soon as it is done, ``status`` a note of what is loading or running.
    Returns the rows of the table and the frameworks skipped because they are not installed.
    """
    problem = make_problem(size)
    rows, skipped = [], []
    for fw in frameworks:
        if not is_installed(fw):
            skipped.append(fw)
            continue
        if status is not None:
            status(
                f"solving with {fw} ..."
                if fw in sys.modules
                else f"importing {fw} (a first import takes seconds) and solving ..."
            )
        with blas_threads(blas):
            rows.append(solve(fw, problem, repeat))
        if on_row is not None:
            on_row(rows[-1])
    return rows, skipped


#: the table's columns, and widths that hold every value, so that rows print as they come
HEADER = ("framework", "dtype", "method", "success", "fun", "nit", "nfev", "max |x - x*|",
          "wall time")  # fmt: skip
WIDTHS = (10, 7, 8, 7, 10, 5, 5, 12, 10)
_NUMERIC = frozenset({4, 5, 6, 7, 8})


def _cells(r: Row) -> tuple[str, ...]:
    return (
        r.framework,
        r.dtype,
        r.method,
        "yes" if r.success else "NO",
        f"{r.fun:.3e}",
        str(r.nit),
        str(r.nfev),
        f"{r.max_err:.2e}",
        f"{r.seconds * 1e3:.1f} ms" if np.isfinite(r.seconds) else "-",
    )


def _join(cells: Sequence[str], widths: Sequence[int], header: bool = False) -> str:
    return "  ".join(
        c.rjust(w) if i in _NUMERIC and not header else c.ljust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ).rstrip()


def format_header(widths: Sequence[int] = WIDTHS) -> str:
    """The table's header and rule."""
    return _join(HEADER, widths, header=True) + "\n" + "  ".join("-" * w for w in widths)


def format_row(row: Row, widths: Sequence[int] = WIDTHS) -> str:
    """One row of the table, in the columns of :func:`format_header`."""
    return _join(_cells(row), widths)


def _threads_line(blas: int, n: int) -> str:
    """What threads the solves use: minimize's setting, and the demo's own BLAS limit."""
    from dict_minimize._threads import ENV_VAR, choose, env_setting

    cap, _ = choose("auto", n)
    env = env_setting()
    where = "threads='auto'" if env is False else f"{ENV_VAR}={'off' if env is None else env}"
    line = f"threads: {where}: " + (
        f"{cap} during each solve (SciPy's BLAS, NumPy's, PyTorch's intra-op)"
        if cap
        else "left as they are"
    )
    return line + (f"; BLAS limited to {blas} by --blas-threads" if blas else "")


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a plain-text table with aligned columns."""
    cells = [_cells(r) for r in rows]
    widths = [max(w, *(len(c[i]) for c in cells)) for i, w in enumerate(WIDTHS)]
    return "\n".join([format_header(widths), *(_join(c, widths) for c in cells)])


class _Status:
    """Notes of what is loading or running, on stderr: on a terminal one transient line,
    erased before the next output; elsewhere (a log, a pipe) one line each."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.shown = False

    def __call__(self, message: str) -> None:
        self.clear()
        self.stream.write(message if self.tty else message + "\n")
        self.stream.flush()
        self.shown = self.tty

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


def _parse_frameworks(values: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    names: list[str] = []
    for value in values:
        for name in value.replace(",", " ").split():
            name = name.lower()
            if name == "all":
                names.extend(FRAMEWORKS)
            elif name not in FRAMEWORKS:
                parser.error(
                    f"unknown framework {name!r}; choose from {', '.join(FRAMEWORKS)} or all"
                )
            else:
                names.append(name)
    return list(dict.fromkeys(names))  # keep order, drop repeats


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 if any solve failed)."""
    parser = argparse.ArgumentParser(
        prog="python -m dict_minimize.demo",
        description="Solve a bounded, dict-split Rosenbrock problem with L-BFGS-B in every "
        "installed framework and print a table.",
    )
    parser.add_argument(
        "--size", type=int, default=6, help="number of Rosenbrock dimensions, >= 3 (default 6)"
    )
    parser.add_argument(
        "--frameworks",
        nargs="+",
        default=["all"],
        metavar="NAME",
        help=f"frameworks to try, space or comma separated: {', '.join(FRAMEWORKS)} or all "
        "(default all; those not installed are skipped)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="solve this many times per framework and report the best wall time (default 1)",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=0,
        metavar="N",
        help="also limit BLAS to N threads during the solves (default 0: leave it to "
        "minimize's threads='auto', one thread for small problems)",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=200,
        metavar="N",
        help="gradient evaluations per optimizer in the L-BFGS-B vs Adam comparison; 0 skips "
        "it (default 200)",
    )
    parser.add_argument(
        "--out",
        default="dict_minimize-demo",
        metavar="DIR",
        help="where the comparison's figures are saved, as PNG (default ./dict_minimize-demo; "
        "needs matplotlib)",
    )
    args = parser.parse_args(argv)
    if args.budget < 0:
        parser.error(f"--budget must be 0 or more; got {args.budget}")
    if args.size < 3:
        parser.error(f"--size must be at least 3; got {args.size}")
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1; got {args.repeat}")
    if args.blas_threads < 0:
        parser.error(f"--blas-threads must be 0 or more; got {args.blas_threads}")
    frameworks = _parse_frameworks(args.frameworks, parser)

    problem = make_problem(args.size)
    shapes = ", ".join(f"{k}: {s}" for k, s in problem.shapes.items())
    print(
        f"Rosenbrock in {problem.size} dims as a dict ({shapes}), ub b <= {UPPER_B:g}, "
        f"x* = 1, method {METHOD}"
    )
    status = _Status()

    def show(line: str) -> None:
        status.clear()
        print(line, flush=True)

    show(_threads_line(args.blas_threads, problem.size))
    if any(is_installed(fw) for fw in frameworks):
        show(format_header())
    rows, skipped = run(
        args.size,
        frameworks,
        args.repeat,
        args.blas_threads or None,
        on_row=lambda row: show(format_row(row)),
        status=status,
    )
    status.clear()
    for fw in skipped:
        print(f"skipped {fw}: not installed")
    failed = [r for r in rows if not r.ok]
    for r in failed:
        reason = r.error or f"max |x - x*| = {r.max_err:.2e} > {TOLERANCE.get(r.dtype)}"
        print(f"FAILED {r.framework}: {reason}")
    if not rows:
        print("nothing was solved: none of the requested frameworks is installed")
    if args.budget:
        from dict_minimize import _demo_compare

        _, figures = _demo_compare.run(args.budget, Path(args.out), echo=show, status=status)
        status.clear()
        for path in figures:
            print(f"saved {path}")
        if not figures:
            print("no figures: install matplotlib (pip install 'dict_minimize[plot]')")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
