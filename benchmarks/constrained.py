"""Large constrained problems: ``method="ipopt"`` with sparse autodiff derivatives against
hand-written cyipopt glue, trust-constr (sparse and dense) and SLSQP (dense).

```bash
python -m benchmarks.constrained            # n = 10^3, 10^4, 10^5; ~10 minutes
python -m benchmarks.constrained --quick    # n = 10^3, 10^4
```

Every run is a fresh subprocess (``--one``), so its peak memory (``ru_maxrss``, framework
imports included) is its own; the wall time covers ``minimize`` (or the floor's
``Problem.solve``) only, JAX's compilations included. Runs are interleaved across contenders,
repeated, and the median kept. Results go to ``benchmarks/constrained.json``, which
``docs/_hooks/constrained_figures.py`` draws and ``docs/guide/ipopt.md`` tabulates.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import constrained_problems as C

OUT = Path(__file__).with_name("constrained.json")
#: contender -> (framework, method, sparse); "floor" is the hand-written cyipopt glue
CONTENDERS: dict[str, tuple[str, str, bool]] = {
    "floor": ("numpy", "ipopt", True),
    "ipopt-jax": ("jax", "ipopt", True),
    "ipopt-torch": ("torch", "ipopt", True),
    "trust-constr-sparse-jax": ("jax", "trust-constr", True),
    "trust-constr-dense-jax": ("jax", "trust-constr", False),
    "slsqp-dense-jax": ("jax", "SLSQP", False),
}
#: the largest n each contender is run at (dense: an (m, n) Jacobian; trust-constr is slow)
LIMIT = {
    "trust-constr-sparse-jax": 10_000,
    "trust-constr-dense-jax": 1_000,
    "slsqp-dense-jax": 1_000,
}
SIZES = {"full": (1_000, 10_000, 100_000), "quick": (1_000, 10_000), "tiny": (60,)}
#: problems run at their own sizes (electrons: a dense Hessian, all pairs; 100 electrons)
OWN_SIZES = {"electrons": {"full": (300,), "quick": (300,), "tiny": (60,)}}


def solve_ours(prob: C.Problem, framework: str, method: str, sparse: bool) -> Any:
    """``dict_minimize.minimize`` on the problem in ``framework``."""
    from dict_minimize import NonlinearConstraint, minimize

    ops = C.ops_for(framework)
    con = NonlinearConstraint(
        prob.constraint(ops),
        prob.clb,
        prob.cub,
        jac_sparsity=prob.jac_sparsity if sparse else None,
    )
    extra: dict[str, Any] = {}
    if sparse and prob.hess_sparsity is not None:
        extra["hess_sparsity"] = prob.hess_sparsity
    options = {"maxiter": 3000} if method == "trust-constr" else {}
    if method == "SLSQP":
        options = {"maxiter": 500}
    return minimize(
        prob.objective(ops),
        C.to_framework(prob.x0, framework),
        jac="autodiff",
        method=method,
        constraints=[con],
        bounds=prob.bounds,
        options=options,
        **extra,
    )


def run_one(contender: str, problem: str, n: int) -> dict[str, Any]:
    """One run in this process: time, iterations, the optimum, peak memory."""
    framework, method, sparse = CONTENDERS[contender]
    if framework == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    elif framework == "torch":
        import torch  # noqa: F401
    prob = C.PROBLEMS[problem](C.size_for(problem, n))
    start = time.perf_counter()
    if contender == "floor":
        _, info = C.solve_floor(prob)
        seconds = time.perf_counter() - start
        fun, status, nit = float(info["obj_val"]), int(info["status"]), int(info["nit"])
        success = status in (0, 1)
    else:
        res = solve_ours(prob, framework, method, sparse)
        seconds = time.perf_counter() - start
        fun, status, nit, success = float(res.fun), int(res.status), int(res.nit), res.success
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
    return {
        "contender": contender,
        "problem": problem,
        "n": prob.n,
        "seconds": seconds,
        "nit": nit,
        "fun": fun,
        "reference": prob.reference,
        "success": bool(success),
        "status": status,
        "peak_mib": peak,
    }


def _spawn(contender: str, problem: str, n: int, timeout: float) -> dict[str, Any] | None:
    cmd = [sys.executable, "-m", "benchmarks.constrained", "--one", contender, problem, str(n)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"contender": contender, "problem": problem, "n": n, "timeout": timeout}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        sys.stderr.write(out.stderr[-2000:])
        return None
    return json.loads(lines[-1])


def run(scale: str, repeats: int, timeout: float, problems: list[str]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for problem in problems:
        for n in OWN_SIZES.get(problem, SIZES)[scale]:
            names = [c for c in CONTENDERS if n <= LIMIT.get(c, 10**9)]
            if problem == "electrons":  # (no Hessian pattern: trust-constr sparse as dense)
                names = [c for c in names if c != "trust-constr-sparse-jax"]
            runs: dict[str, list[dict[str, Any]]] = {c: [] for c in names}
            for _ in range(repeats if n < 100_000 else max(1, repeats - 1)):  # interleaved
                for c in names:
                    if runs[c] and "timeout" in runs[c][-1]:
                        continue
                    got = _spawn(c, problem, n, timeout)
                    if got is not None:
                        runs[c].append(got)
                        print(json.dumps(got), flush=True)
            for got in runs.values():
                rows.extend(aggregate(got))
    return {"machine": _machine(), "rows": rows}


def aggregate(got: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The repeats of one contender on one problem and size as one row: medians (a run that
    timed out stands for them all when none finished)."""
    ok = [g for g in got if "timeout" not in g]
    if not ok:
        return got[:1]
    row = dict(ok[0])
    row["seconds"] = statistics.median(g["seconds"] for g in ok)
    row["peak_mib"] = statistics.median(g["peak_mib"] for g in ok)
    row["repeats"] = len(ok)
    return [row]


def from_logs(paths: list[str]) -> dict[str, Any]:
    """Rows rebuilt from the JSON lines runs printed (a run stopped early, runs in parts)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                groups.setdefault((r["problem"], r["n"], r["contender"]), []).append(r)
    rows = [row for got in groups.values() for row in aggregate(got)]
    for r in rows:  # a timed-out run carries the requested n: the problem's own
        if "timeout" in r:
            r["n"] = C.PROBLEMS[r["problem"]](C.size_for(r["problem"], r["n"])).n
    return {"machine": _machine(), "rows": rows}


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def table(data: dict[str, Any]) -> str:
    """The results as a markdown table (one row per problem, n and contender)."""
    lines = [
        "| problem | n | contender | seconds | iterations | peak MiB | f | reference |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in data["rows"]:
        if "timeout" in r:
            lines.append(
                f"| {r['problem']} | {r['n']} | {r['contender']} | > {r['timeout']:.0f} | | | | |"
            )
            continue
        nit = "" if r.get("nit") is None else str(r["nit"])
        lines.append(
            f"| {r['problem']} | {r['n']} | {r['contender']} | {r['seconds']:.2f} | {nit} | "
            f"{r['peak_mib']:.0f} | {r['fun']:.6f}{'' if r['success'] else ' (failed)'} | "
            f"{r['reference']:.6f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="the smoke test's sizes")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--problems", default="chain,cart,electrons")
    parser.add_argument("--output", default=str(OUT), help="'-': print only")
    parser.add_argument("--one", nargs=3, metavar=("CONTENDER", "PROBLEM", "N"))
    parser.add_argument("--from-logs", nargs="+", help="rebuild the results from printed lines")
    args = parser.parse_args(argv)
    if args.one:
        contender, problem, n = args.one
        print(json.dumps(run_one(contender, problem, int(n))))
        return
    scale = "tiny" if args.tiny else "quick" if args.quick else "full"
    if args.from_logs:
        data = from_logs(args.from_logs)
    else:
        data = run(scale, args.repeats, args.timeout, args.problems.split(","))
    print(table(data))
    if args.output != "-":
        Path(args.output).write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
