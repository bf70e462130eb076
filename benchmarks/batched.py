"""Batched L-BFGS-B: B small problems of one structure, solved together against one by one.

Two problems, each at B = 10, 100, 1,000, 10,000 (L-BFGS-B, float64):

- ``calibration-torch`` and ``calibration-jax``: B beta calibrations (3 parameters ``v = (a,
  b, c)``, ``a, b >= 0``, 500 (score, label) points each, one segment's data per problem),
  the mean log-loss written once per framework, gradients by the framework's autodiff;
- ``hartmann-torch``: a multistart of the 6-dimensional Hartmann function from B points drawn
  in its box ``[0, 1]^6``, with those bounds.

Contenders, interleaved round by round (medians of the rounds):

- ``ours batched``: ``dict_minimize.minimize_batched(loss, x0, batch_args=..., jac="autodiff")``
  on the per-problem loss, which the package vectorizes (``torch.func.vmap``, ``jax.vmap``);
- ``ours vectorized``: ``minimize_batched(..., vectorized=True, jac=True)`` on the batched
  function below (in the framework's tensors), the form BoTorch's users write;
- ``lean driver``: the core ``minimize_batched`` runs for L-BFGS-B
  (``dict_minimize._solvers.lbfgsb_batch.lbfgsb_batched``) on the same batched function, NumPy
  in and out, without the package's per-problem layer (checks, counts, best point, result);
- ``sequential``: B calls of ``dict_minimize.minimize(loss, {"v": ...}, jac="autodiff")``;
- ``pool``: ``minimize_many`` on a 2-process pool (spawned once, outside the timing);
- ``botorch``: BoTorch's ``fmin_l_bfgs_b_batched`` on the same batched function
  (``pass_batch_indices=True``), under the same cap of SciPy's BLAS threads (one) that ours
  and ``minimize`` run under; left out, with a line saying so, where botorch is not
  installed (it is a benchmark-only install: ``pip install -c constraints.txt botorch``).

PyTorch runs on one thread (``torch.set_num_threads(1)``, what the sequential solves get from
``threads="auto"``). The batched function takes the problems' indices and their points
``(k, n)`` and returns the values ``(k,)`` and gradients ``(k, n)``: PyTorch runs one autograd
pass over the stacked rows; JAX runs ``jit(vmap(value_and_grad(loss)))``, its rows padded to
the next power of two so that it compiles once per size class (every class up to B before the
timings). The bridge's own cost per problem per iteration is the
driver's time outside the batched function divided by the iterations of all problems.

    python -m benchmarks.batched                 # writes benchmarks/results/batched.json
    python -m benchmarks.batched --quick         # B = 10, 100; one round: a smoke run

The sequential and pool contenders run up to B = 1,000 (``--max-sequential``): at 10,000 they
would take tens of minutes on 2 cores, and their time grows linearly in B.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy

from dict_minimize import minimize, minimize_batched, minimize_many
from dict_minimize._solvers.lbfgsb_batch import lbfgsb_batched
from dict_minimize._threads import limit_blas_threads

RESULTS = Path(__file__).resolve().parent / "results" / "batched.json"
SIZES = (10, 100, 1_000, 10_000)
POINTS = 500
# Hartmann-6's constants (alpha, A, P)
H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                       [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def calibration_data(b: int, points: int = POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each segment's (log p, log(1 - p)) features and labels: three arrays of shape (b, points)."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, (b, points))
    power = rng.uniform(0.5, 2.0, (b, 1))  # each segment mis-calibrated its own way
    y = (rng.uniform(size=(b, points)) < p**power).astype(np.float64)
    return np.log(p), np.log1p(-p), y


# -- the per-problem losses (module level: the pool pickles them) ---------------------------------


def calibration_loss_torch(d: dict, lp: Any, l1p: Any, y: Any) -> Any:
    import torch

    v = d["v"]
    z = v[0] * lp - v[1] * l1p + v[2]
    return (torch.nn.functional.softplus(z) - y * z).mean()


def calibration_loss_jax(d: dict, lp: Any, l1p: Any, y: Any) -> Any:
    import jax

    v = d["v"]
    z = v[0] * lp - v[1] * l1p + v[2]
    return (jax.nn.softplus(z) - y * z).mean()


def hartmann_loss_torch(d: dict, alpha: Any, a: Any, p: Any) -> Any:
    import torch

    v = d["v"]
    return -(alpha * torch.exp(-(a * (v - p) ** 2).sum(-1))).sum(-1)


def calibration_vectorized_torch(x: dict, idx: Any, lp: Any, l1p: Any, y: Any) -> Any:
    """The batched function in PyTorch's tensors (minimize_batched's ``vectorized=True``)."""
    import torch

    v = x["v"].detach().requires_grad_(True)
    z = v[:, 0:1] * lp - v[:, 1:2] * l1p + v[:, 2:3]
    f = (torch.nn.functional.softplus(z) - y * z).mean(dim=1)
    (g,) = torch.autograd.grad(f.sum(), v)
    return f.detach(), {"v": g}


def hartmann_vectorized_torch(x: dict, idx: Any, alpha: Any, a: Any, p: Any) -> Any:
    import torch

    v = x["v"].detach().requires_grad_(True)
    f = hartmann_loss_torch({"v": v[:, None, :]}, alpha, a, p)
    (g,) = torch.autograd.grad(f.sum(), v)
    return f.detach(), {"v": g}


# -- the batched functions: evaluate(idx, X) -> (f, G), NumPy in and out -------------------------


class TorchBatched:
    """One autograd pass over the stacked rows of the problems ``idx``."""

    def __init__(self, loss: str, data: tuple[np.ndarray, ...]):
        import torch

        self.torch = torch
        self.loss = loss
        self.data = tuple(torch.from_numpy(a) for a in data)

    def __call__(self, idx: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        v = torch.from_numpy(x).requires_grad_(True)
        if self.loss == "calibration":
            i = torch.from_numpy(idx)
            lp, l1p, y = (a[i] for a in self.data)
            z = v[:, 0:1] * lp - v[:, 1:2] * l1p + v[:, 2:3]
            f = (torch.nn.functional.softplus(z) - y * z).mean(dim=1)
        else:
            alpha, a, p = self.data
            f = hartmann_loss_torch({"v": v[:, None, :]}, alpha, a, p)
        (g,) = torch.autograd.grad(f.sum(), v)
        return f.detach().numpy(), g.numpy()


class JaxBatched:
    """``jit(vmap(value_and_grad(loss)))``, rows padded to the next power of two (at least 8)."""

    def __init__(self, data: tuple[np.ndarray, ...]):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        self.data = tuple(jnp.asarray(a) for a in data)

        def run(x: Any, idx: Any, lp: Any, l1p: Any, y: Any) -> Any:
            vg = jax.vmap(jax.value_and_grad(lambda v, *r: calibration_loss_jax({"v": v}, *r)))
            return vg(x, lp[idx], l1p[idx], y[idx])

        self.run = jax.jit(run)
        self.compile_seconds = 0.0

    def warm(self, b: int, n: int) -> None:
        """Compile every size class up to ``b`` rows (outside the timings)."""
        start = time.perf_counter()
        size = 8
        while True:
            self.run(np.zeros((size, n)), np.zeros(size, np.int64), *self.data)
            if size >= b:
                break
            size *= 2
        self.compile_seconds = time.perf_counter() - start

    def __call__(self, idx: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = len(idx)
        size = max(8, 1 << (k - 1).bit_length())
        xp = np.concatenate([x, np.repeat(x[-1:], size - k, axis=0)])
        ip = np.concatenate([idx, np.repeat(idx[-1:], size - k)])
        f, g = self.run(xp, ip, *self.data)
        return np.asarray(f)[:k], np.asarray(g)[:k]

    def vectorized(self, x: dict, idx: Any, *rows: Any) -> Any:
        """minimize_batched's ``vectorized=True`` form: the stacked dict of JAX arrays."""
        f, g = self(np.asarray(idx, dtype=np.int64), np.asarray(x["v"]))
        return f, {"v": g}


@dataclass
class Problem:
    """One benchmark problem at one B: the batched function and what the per-problem solves get."""

    name: str
    framework: str
    x0: np.ndarray  # (B, n)
    lower: np.ndarray  # (n,), shared
    upper: np.ndarray
    evaluate: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    loss: Callable[..., Any]
    args: list[tuple[Any, ...]]  # per problem
    to_tensor: Callable[[np.ndarray], Any]
    batch_args: tuple[Any, ...] = ()  # minimize_batched's: per problem, leading axis B
    shared: tuple[Any, ...] = ()  # minimize_batched's args
    vectorized: Callable[..., Any] | None = None  # fun(x_active, idx, *batch_args, *shared)


def build(name: str, b: int, points: int = POINTS) -> Problem:
    """``calibration-torch``, ``calibration-jax`` or ``hartmann-torch`` with B = ``b``."""
    if name == "hartmann-torch":
        import torch

        x0 = np.random.default_rng(1).uniform(0.0, 1.0, (b, 6))
        data = (H_ALPHA, H_A, H_P)
        shared = tuple(torch.from_numpy(a) for a in data)
        return Problem(
            name, "torch", x0, np.zeros(6), np.ones(6), TorchBatched("hartmann", data),
            hartmann_loss_torch, [shared] * b, torch.from_numpy, (), shared,
            hartmann_vectorized_torch,
        )
    data = calibration_data(b, points)
    x0 = np.tile([1.0, 1.0, 0.0], (b, 1))
    lower, upper = np.array([0.0, 0.0, -np.inf]), np.full(3, np.inf)
    if name == "calibration-torch":
        import torch

        rows = [tuple(torch.from_numpy(a[i]) for a in data) for i in range(b)]
        return Problem(
            name, "torch", x0, lower, upper, TorchBatched("calibration", data),
            calibration_loss_torch, rows, torch.from_numpy,
            tuple(torch.from_numpy(a) for a in data), (), calibration_vectorized_torch,
        )
    import jax.numpy as jnp

    evaluate = JaxBatched(data)
    evaluate.warm(b, 3)
    rows = [tuple(jnp.asarray(a[i]) for a in data) for i in range(b)]
    return Problem(
        name, "jax", x0, lower, upper, evaluate, calibration_loss_jax, rows, jnp.asarray,
        tuple(jnp.asarray(a) for a in data), (), evaluate.vectorized,
    )


# -- the contenders: each returns (results, seconds outside the batched function or None) -------


class Timed:
    """The batched function, timing its calls and counting its rows."""

    def __init__(self, evaluate: Callable[..., Any]):
        self.evaluate = evaluate
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, *a: Any) -> Any:
        start = time.perf_counter()
        out = self.evaluate(*a)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def ours_batched(prob: Problem) -> tuple[list[Any], None]:
    x0 = {"v": prob.to_tensor(prob.x0)}
    kw = _keywords(prob)
    res = minimize_batched(prob.loss, x0, batch_args=prob.batch_args, args=prob.shared, **kw)
    return res.results, None


def ours_vectorized(prob: Problem) -> tuple[list[Any], float]:
    assert prob.vectorized is not None
    timed = Timed(prob.vectorized)
    x0 = {"v": prob.to_tensor(prob.x0)}
    kw = {**_keywords(prob), "jac": True}
    start = time.perf_counter()
    res = minimize_batched(
        timed, x0, batch_args=prob.batch_args, args=prob.shared, vectorized=True, jit=False, **kw
    )
    return res.results, time.perf_counter() - start - timed.seconds


def lean(prob: Problem) -> tuple[list[Any], float]:
    b, n = prob.x0.shape
    timed = Timed(prob.evaluate)
    start = time.perf_counter()
    lower, upper = np.broadcast_to(prob.lower, (b, n)), np.broadcast_to(prob.upper, (b, n))
    res = lbfgsb_batched(timed, prob.x0, lower, upper, {})
    return res, time.perf_counter() - start - timed.seconds


def botorch(prob: Problem) -> tuple[list[Any], float]:
    from botorch.optim.batched_lbfgs_b import fmin_l_bfgs_b_batched

    timed = Timed(prob.evaluate)

    def func(x: np.ndarray, batch_indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return timed(np.asarray(batch_indices, dtype=np.int64), x)

    bounds = list(zip(prob.lower, prob.upper, strict=True))
    start = time.perf_counter()
    with limit_blas_threads(1):  # the cap ours and the sequential solves run under
        _, _, res = fmin_l_bfgs_b_batched(func, prob.x0, bounds=bounds, pass_batch_indices=True)
    return res, time.perf_counter() - start - timed.seconds


def _keywords(prob: Problem) -> dict[str, Any]:
    lb = {"v": prob.to_tensor(prob.lower)}
    ub = {"v": prob.to_tensor(prob.upper)}
    return {"method": "L-BFGS-B", "jac": "autodiff", "lb_dict": lb, "ub_dict": ub}


def sequential(prob: Problem) -> tuple[list[Any], None]:
    kw = _keywords(prob)
    return [
        minimize(prob.loss, {"v": prob.to_tensor(x)}, args=a, **kw)
        for x, a in zip(prob.x0, prob.args, strict=True)
    ], None


def pool(prob: Problem, executor: Any) -> tuple[list[Any], None]:
    x0s = [{"v": prob.to_tensor(x)} for x in prob.x0]
    return minimize_many(prob.loss, x0s, args=prob.args, executor=executor, **_keywords(prob)), None


def have_botorch() -> bool:
    try:
        from botorch.optim.batched_lbfgs_b import fmin_l_bfgs_b_batched  # noqa: F401
    except ImportError:
        return False
    return True


def _fun(r: Any) -> float:
    return float(r["fun"])


def agreement(got: list[Any], want: list[Any]) -> dict[str, float]:
    """How far the batched results are from the sequential ones."""
    pairs = list(zip(got, want, strict=True))
    rel = [abs(_fun(a) - _fun(b)) / max(abs(_fun(b)), 1e-300) for a, b in pairs]
    same_nit = [int(a["nit"]) == int(b["nit"]) for a, b in pairs]
    return {"max_rel_fun": max(rel), "same_nit": sum(same_nit) / len(same_nit)}


def measure(
    prob: Problem, names: list[str], rounds: int, executor: Any, points: int = POINTS
) -> dict[str, Any]:
    """Warm each contender once on a few problems, then ``rounds`` interleaved rounds."""
    run: dict[str, Callable[[Problem], tuple[list[Any], float | None]]] = {
        "ours batched": ours_batched,
        "ours vectorized": ours_vectorized,
        "lean driver": lean,
        "sequential": sequential,
        "pool": lambda p: pool(p, executor),
        "botorch": botorch,
    }
    small = build(prob.name, 2, points) if prob.x0.shape[0] > 2 else prob
    for name in names:  # imports, compilations, the pool's first tasks
        run[name](small)
    first: dict[str, float] = {}
    if isinstance(prob.evaluate, JaxBatched):
        # JAX compiles once per size class (and eagerly per shape): every class up to B before
        # the timings, as ``build`` does for the batched function the others call
        for name in ("ours batched", "ours vectorized"):
            if name in names:
                start = time.perf_counter()
                run[name](prob)
                first[name] = time.perf_counter() - start
    times: dict[str, list[float]] = {k: [] for k in names}
    bridge: dict[str, list[float]] = {k: [] for k in names}
    results: dict[str, list[Any]] = {}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            res, outside = run[name](prob)
            times[name].append(time.perf_counter() - start)
            results[name] = res
            if outside is not None:
                iterations = sum(int(x["nit"]) for x in res)
                bridge[name].append(outside / max(iterations, 1))
    out: dict[str, Any] = {"seconds": {k: statistics.median(v) for k, v in times.items()}}
    out["rounds"] = rounds
    if isinstance(prob.evaluate, JaxBatched):
        out["jax_compile_seconds"] = prob.evaluate.compile_seconds
        out["first_call_seconds"] = first  # ours' first run at this B, compilations included
    out["bridge_s_per_problem_iteration"] = {
        k: statistics.median(v) for k, v in bridge.items() if v
    }
    out["mean_nit"] = {k: float(np.mean([int(x["nit"]) for x in v])) for k, v in results.items()}
    if "sequential" in results:
        out["vs_sequential"] = {
            k: agreement(v, results["sequential"]) for k, v in results.items() if k != "sequential"
        }
    return out


def machine() -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "torch_threads": torch.get_num_threads(),
    }
    try:
        import jax

        facts["jax"] = jax.__version__
    except ImportError:
        facts["jax"] = None
    try:
        import botorch

        facts["botorch"] = botorch.__version__
    except ImportError:
        facts["botorch"] = None
    return facts


LABELS = {
    "ours batched": "ours batched",
    "ours vectorized": "ours vectorized",
    "lean driver": "lean driver",
    "sequential": "sequential",
    "pool": "2-process pool",
    "botorch": "BoTorch batched",
}


def _ratio(s: dict[str, float], slow: str, fast: str) -> str:
    return f"{s[slow] / s[fast]:.1f}x" if slow in s and fast in s else "-"


def _us(m: dict[str, Any], name: str) -> str:
    cost = m["bridge_s_per_problem_iteration"].get(name)
    return f"{cost * 1e6:.0f}" if cost is not None else "-"


def table(data: dict[str, Any]) -> str:
    """The Markdown tables: the medians with the speed-ups, and the bridge's cost."""
    head = ["problem", "B", *LABELS.values(), "batched vs sequential", "batched vs BoTorch",
            "vectorized vs BoTorch", "lean vs BoTorch"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    costs = [
        "| problem | B | ours vectorized | lean driver | BoTorch batched |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, by_b in data["problems"].items():
        for b, m in by_b.items():
            s = m["seconds"]
            cell = [f"{s[k]:.3g} s" if k in s else "-" for k in LABELS]
            ratios = [
                _ratio(s, "sequential", "ours batched"),
                _ratio(s, "botorch", "ours batched"),
                _ratio(s, "botorch", "ours vectorized"),
                _ratio(s, "botorch", "lean driver"),
            ]
            mark = " (earlier run)" if m.get("earlier_run") else ""
            lines.append("| " + " | ".join([name, f"{int(b):,}{mark}", *cell, *ratios]) + " |")
            us = [_us(m, k) for k in ("ours vectorized", "lean driver", "botorch")]
            costs.append("| " + " | ".join([name, f"{int(b):,}", *us]) + " |")
    cpu = data.get("bridge_cpu_s_per_problem_iteration", {})
    cpu_line = ", ".join(f"{k} {v * 1e6:.1f} µs" for k, v in cpu.items())
    return "\n".join(
        [*lines, "", "Bridge: µs per problem per iteration, outside the batched function", "",
         *costs, "", f"CPU time per problem-iteration (NumPy Hartmann-6, B = 1,000): {cpu_line}"]
    )


def _keep_earlier(data: dict[str, Any], old: dict[str, Any]) -> None:
    """The entries of an earlier run that this one did not measure, marked ``earlier_run``
    (with that run's ``uptime``), in the order of the sizes."""
    when = old.get("machine", {}).get("uptime", "an earlier run")
    for name, by_b in old.get("problems", {}).items():
        new = data["problems"].setdefault(name, {})
        for b, m in by_b.items():
            if b not in new:
                new[b] = {**m, "earlier_run": m.get("earlier_run", when)}
        data["problems"][name] = dict(sorted(new.items(), key=lambda kv: int(kv[0])))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="B = 10, 100 and one round")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--points", type=int, default=POINTS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-rounds", type=int, default=1, help="rounds at B >= 1,000")
    parser.add_argument("--max-sequential", type=int, default=1_000,
                        help="the largest B for the sequential and pool contenders")
    parser.add_argument("--problems", default="calibration-torch,calibration-jax,hartmann-torch")
    parser.add_argument("--contenders", default=",".join(LABELS))
    parser.add_argument("--output", default=str(RESULTS), help="the JSON file ('-': none)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the entries of --output this run does not measure, marked "
                        "earlier_run")
    parser.add_argument("--bridge-only", action="store_true",
                        help="only the bridge's CPU time, added to the JSON in --output")
    opts = parser.parse_args(argv)
    from benchmarks.batched_bridge import bridge_cpu

    if opts.bridge_only:
        cpu = bridge_cpu()
        print({k: f"{v * 1e6:.1f} µs" for k, v in cpu.items()})
        if opts.output != "-":
            stored = json.loads(Path(opts.output).read_text())
            stored["bridge_cpu_s_per_problem_iteration"] = cpu
            Path(opts.output).write_text(json.dumps(stored, indent=1, default=float) + "\n")
        return 0
    sizes = opts.sizes or ([10, 100] if opts.quick else list(SIZES))
    rounds = 1 if opts.quick else opts.rounds
    names = [c for c in opts.contenders.split(",") if c]
    if "botorch" in names and not have_botorch():
        print("botorch is not installed: the BoTorch contender is left out "
              "(pip install -c constraints.txt botorch)")
        names.remove("botorch")
    import torch

    torch.set_num_threads(1)  # as the sequential solves run (threads="auto": one thread)
    data: dict[str, Any] = {"machine": machine(), "problems": {}}
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as executor:
        for name in opts.problems.split(","):
            data["problems"][name] = {}
            for b in sizes:
                prob = build(name, b, opts.points)
                slow = ("sequential", "pool")
                here = [c for c in names if b <= opts.max_sequential or c not in slow]
                r = opts.big_rounds if b >= 1_000 else rounds
                start = time.perf_counter()
                data["problems"][name][str(b)] = measure(prob, here, r, executor, opts.points)
                print(f"{name} B={b}: {time.perf_counter() - start:.1f} s "
                      f"{data['problems'][name][str(b)]['seconds']}", flush=True)
    top = min(1_000, max(sizes))
    data["bridge_cpu_s_per_problem_iteration"] = bridge_cpu(
        top, rounds=1 if opts.quick else rounds, singles=min(200, top)
    )
    data["machine"]["load_after"] = os.getloadavg()
    if opts.keep and opts.output != "-" and Path(opts.output).exists():
        _keep_earlier(data, json.loads(Path(opts.output).read_text()))
    print(table(data))
    if opts.output != "-":
        Path(opts.output).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.output).write_text(json.dumps(data, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
