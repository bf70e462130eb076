"""The figure of docs/guide/batched.md: wall time against B per contender, one panel per problem.

Drawn from the numbers ``python -m benchmarks.batched`` stored in
``benchmarks/results/batched.json`` (never by running the benchmark at build time). The docs'
figure hook (``docs/_hooks/figures.py``) publishes the PNG as ``figures/batched_time.png``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "batched.json"
#: the contenders in the order of the legend, with their labels and line styles
STYLES = {
    "ours batched": ("minimize_batched (per-problem loss)", "-", "o"),
    "ours vectorized": ("minimize_batched (vectorized=True)", "-", "s"),
    "lean driver": ("its L-BFGS-B driver alone", ":", "^"),
    "botorch": ("BoTorch fmin_l_bfgs_b_batched", "--", "D"),
    "sequential": ("B sequential minimize", "--", "v"),
    "pool": ("minimize_many, 2 processes", "-.", "x"),
}


def load(path: Path = RESULTS) -> dict[str, Any]:
    """The benchmark's stored results."""
    return json.loads(path.read_text())


def draw(data: dict[str, Any]) -> Any:
    """A matplotlib Figure of ``data`` (the benchmark's JSON)."""
    from matplotlib.figure import Figure

    problems = data["problems"]
    fig = Figure(figsize=(4.0 * max(len(problems), 1), 4.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, max(len(problems), 1), squeeze=False)[0]
    for ax, (name, by_b) in zip(axes, problems.items(), strict=False):
        sizes = sorted(by_b, key=int)
        for key, (label, style, marker) in STYLES.items():
            pts = [(int(b), by_b[b]["seconds"][key]) for b in sizes if key in by_b[b]["seconds"]]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, linestyle=style, marker=marker, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("B (problems)")
        ax.set_title(name)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("wall time (s), median")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize="small")
    load_avg = data.get("machine", {}).get("load_before")
    note = f"; load average {load_avg[0]:.1f} at the start" if load_avg else ""
    fig.suptitle(f"L-BFGS-B on B problems, float64{note}")
    return fig


def batched_time() -> bytes:
    """The PNG of the stored results."""
    buf = io.BytesIO()
    draw(load()).savefig(buf, format="png")
    return buf.getvalue()


FIGURES = {"batched_time.png": batched_time}
