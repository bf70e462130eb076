"""Constraints by reparametrisation: the cost per evaluation, and optimagic side by side.

For each constraint type and size the script solves ``min ||x - target||^2`` (a weighted sum
for the covariance) under the constraint with L-BFGS-B and ``jac=True``, and prints one row:
the optimum, the evaluations, the time per solve and per evaluation, and whether the constraint
holds at the result. With ``--optimagic`` (where optimagic is importable; it is never a
dependency of this package: install it in a throwaway environment) the same problems run
through ``optimagic.minimize(algorithm="scipy_lbfgsb")`` with its constraint objects, beside.

    python -m benchmarks.reparam               # ours, sizes 10 and 1,000 (covariance 4x4, 20x20)
    python -m benchmarks.reparam --optimagic   # and optimagic's
    python -m benchmarks.reparam --quick       # tiny sizes (the smoke test)

Times are the best of ``--repeat`` runs (optimagic's: ``--repeat-optimagic``, 1 by default:
its larger problems take minutes); they depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from dict_minimize import minimize

KINDS = ("fixed", "probability", "increasing", "covariance", "linear")


def _problem(kind: str, n: int) -> dict[str, Any]:
    """x0, target, our constraint, optimagic's (a factory) and the check, for one kind."""
    rng = np.random.default_rng(0)
    if kind == "covariance":  # n: the matrix's side; an indefinite target, a singular optimum
        a = rng.normal(size=(n, n))
        tgt = a + a.T
        rows, cols = np.tril_indices(n)
        return {
            "x0": np.eye(n),
            "target": tgt,
            "ours": {"type": "covariance", "key": "x"},
            "theirs": lambda om: om.FlatCovConstraint(selector=lambda p: p["x"]),
            "flat_x0": np.eye(n)[rows, cols],
            "tril": (rows, cols),
            "check": lambda x: bool(np.linalg.eigvalsh(x).min() >= -1e-9),
        }
    mask = np.arange(n) % 2 == 0
    x0 = {
        "fixed": rng.normal(size=n),
        "probability": np.full(n, 1.0 / n),
        "increasing": np.linspace(0.0, 1.0, n),
        "linear": np.ones(n),
    }[kind]
    tgt = rng.uniform(0, 2.0 / n, n) if kind == "probability" else rng.normal(size=n)
    ours: dict[str, Any] = {"type": kind, "key": "x"}
    if kind == "fixed":
        ours["mask"] = mask
    if kind == "linear":
        ours.update(weights=np.ones(n), value=float(n))

    def theirs(om: Any) -> Any:
        sel: Callable = lambda p: p["x"]  # noqa: E731
        if kind == "fixed":
            return om.FixedConstraint(selector=lambda p: p["x"][mask])
        if kind == "probability":
            return om.ProbabilityConstraint(selector=sel)
        if kind == "increasing":
            return om.IncreasingConstraint(selector=sel)
        return om.LinearConstraint(selector=sel, weights=np.ones(n), value=float(n))

    checks = {
        "fixed": lambda x: bool(np.array_equal(x[mask], x0[mask])),
        "probability": lambda x: bool(abs(x.sum() - 1) < 1e-8 and x.min() >= 0),
        "increasing": lambda x: bool(np.all(np.diff(x) >= -1e-10)),
        "linear": lambda x: bool(abs(x.sum() - n) < 1e-6 * n),
    }
    return {"x0": x0, "target": tgt, "ours": ours, "theirs": theirs, "check": checks[kind]}


def _ours(prob: dict[str, Any]) -> tuple[float, int, float, bool]:
    tgt = prob["target"]
    count = [0]

    def fun(d: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        count[0] += 1
        r = d["x"] - tgt
        return float((r * r).sum()), {"x": 2 * r}

    start = time.perf_counter()
    res = minimize(fun, {"x": prob["x0"]}, method="L-BFGS-B", constraints=[prob["ours"]])
    seconds = time.perf_counter() - start
    return float(res.fun), count[0], seconds, prob["check"](res.x["x"])


def _theirs(prob: dict[str, Any], om: Any) -> tuple[float, int, float, bool]:
    tgt = prob["target"]
    count = [0]
    tril = prob.get("tril")
    if tril is None:

        def fun(p: dict[str, Any]) -> float:
            count[0] += 1
            r = p["x"] - tgt
            return float(r @ r)

        def jac(p: dict[str, Any]) -> dict[str, Any]:
            return {"x": 2 * (p["x"] - tgt)}

        x0 = prob["x0"]
    else:  # optimagic's covariance is the flat lower triangle; the same objective on it
        rows, cols = tril
        twice = np.where(rows == cols, 1.0, 2.0)

        def fun(p: dict[str, Any]) -> float:
            count[0] += 1
            r = p["x"] - tgt[rows, cols]
            return float(twice @ (r * r))

        def jac(p: dict[str, Any]) -> dict[str, Any]:
            return {"x": 2 * twice * (p["x"] - tgt[rows, cols])}

        x0 = prob["flat_x0"]
    start = time.perf_counter()
    res = om.minimize(
        fun=fun,
        params={"x": x0},
        algorithm="scipy_lbfgsb",
        jac=jac,
        constraints=[prob["theirs"](om)],
    )
    seconds = time.perf_counter() - start
    x = res.params["x"]
    if tril is not None:
        full = np.zeros_like(tgt)
        full[tril] = x
        x = full + np.tril(full, -1).T
    return float(res.fun), count[0], seconds, prob["check"](x)


def _best(run: Callable[[], tuple[float, int, float, bool]], repeat: int) -> tuple:
    runs = [run() for _ in range(repeat)]
    return min(runs, key=lambda r: r[2])


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    parser.add_argument("--optimagic", action="store_true", help="run optimagic beside")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours (the best counts)")
    parser.add_argument("--repeat-optimagic", type=int, default=1, help="runs of optimagic's")
    opts = parser.parse_args(argv)
    om = None
    if opts.optimagic:
        import optimagic as om  # (benchmark only: never a dependency)
    sizes = {k: (3,) if opts.quick else (10, 1000) for k in KINDS}
    sizes["covariance"] = (2,) if opts.quick else (4, 20)
    head = "| constraint | size | f ours | evals | ms/solve | ms/eval | holds |"
    rule = "|---|---|---|---|---|---|---|"
    if om is not None:
        head = "| constraint | size | f ours / optimagic | evals | ms/solve | ms/eval | holds |"
    lines = [head, rule]
    print(head)
    print(rule, flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind in KINDS:
            for n in sizes[kind]:
                prob = _problem(kind, n)
                a = _best(lambda prob=prob: _ours(prob), opts.repeat)
                size = f"{n}x{n}" if kind == "covariance" else str(n)
                if om is None:
                    cells = [f"{a[0]:.6g}", str(a[1]), f"{1e3 * a[2]:.1f}"]
                    cells += [f"{1e3 * a[2] / max(a[1], 1):.3f}", str(a[3])]
                else:
                    b = _best(lambda prob=prob: _theirs(prob, om), opts.repeat_optimagic)
                    cells = [
                        f"{a[0]:.6g} / {b[0]:.6g}",
                        f"{a[1]} / {b[1]}",
                        f"{1e3 * a[2]:.1f} / {1e3 * b[2]:.1f}",
                        f"{1e3 * a[2] / max(a[1], 1):.3f} / {1e3 * b[2] / max(b[1], 1):.3f}",
                        f"{a[3]} / {b[3]}",
                    ]
                line = f"| {kind} | {size} | " + " | ".join(cells) + " |"
                lines.append(line)
                print(line, flush=True)
    return lines


if __name__ == "__main__":
    main()
