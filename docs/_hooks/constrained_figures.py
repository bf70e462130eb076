"""The figure of docs/guide/ipopt.md: wall time against n per contender, drawn from the numbers
``python -m benchmarks.constrained`` stored in ``benchmarks/constrained.json`` (no solve runs at
docs build time)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "constrained.json"
STYLE = {
    "floor": ("hand-written cyipopt", "k", "o"),
    "ipopt-jax": ("ipopt, JAX (ours)", "C0", "s"),
    "ipopt-torch": ("ipopt, PyTorch (ours)", "C1", "s"),
    "trust-constr-sparse-jax": ("trust-constr sparse, JAX", "C2", "^"),
    "trust-constr-dense-jax": ("trust-constr dense, JAX", "C3", "v"),
    "slsqp-dense-jax": ("SLSQP dense, JAX", "C4", "d"),
}


def time_vs_n(results: Path = RESULTS) -> bytes:
    """One panel per problem: median seconds to solution against n, log-log, per contender
    (runs that timed out are left out)."""
    from matplotlib.figure import Figure

    data: dict[str, Any] = json.loads(results.read_text())
    problems = list(dict.fromkeys(r["problem"] for r in data["rows"]))
    fig = Figure(figsize=(4.2 * len(problems), 4.4), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(problems), squeeze=False)[0]
    for ax, problem in zip(axes, problems, strict=True):
        for contender, (label, color, marker) in STYLE.items():
            rows = [
                r
                for r in data["rows"]
                if r["problem"] == problem and r["contender"] == contender and "seconds" in r
            ]
            if rows:
                rows.sort(key=lambda r: r["n"])
                ax.loglog(
                    [r["n"] for r in rows],
                    [r["seconds"] for r in rows],
                    marker=marker,
                    color=color,
                    label=label,
                )
        ax.set_title(problem)
        ax.set_xlabel("n (variables)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("seconds (median)")
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=3, fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


FIGURES: dict[str, Callable[[], bytes]] = {"constrained_time_vs_n.png": time_vs_n}
