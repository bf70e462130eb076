"""The batched benchmark (``python -m benchmarks.batched``) and its figure, on tiny sizes.

Not a timing: the benchmark's problems, contenders, JSON and table run end to end in a few
seconds, the batched contenders agree with the sequential solves, and the docs' figure draws
from the JSON the benchmark writes and from the one stored in the repository.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from benchmarks import batched as BB

HOOK = Path(__file__).resolve().parents[1] / "docs" / "_hooks" / "batched_figures.py"


def _hook():
    spec = importlib.util.spec_from_file_location("_batched_figures", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["calibration-torch", "hartmann-torch"])
def test_batched_function_matches_the_per_problem_loss(name: str) -> None:
    """The batched function's rows are the per-problem loss and its gradient."""
    import torch

    prob = BB.build(name, 4, 30)
    x = prob.x0 + 0.05
    f, g = prob.evaluate(np.arange(4), x)
    for i in range(4):
        v = torch.tensor(x[i], requires_grad=True)
        value = prob.loss({"v": v}, *prob.args[i])
        (grad,) = torch.autograd.grad(value, v)
        np.testing.assert_allclose(f[i], value.item(), rtol=1e-12)
        np.testing.assert_allclose(g[i], grad.numpy(), rtol=1e-10, atol=1e-14)


def test_benchmark_runs_and_writes_its_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "batched.json"
    problems = ["calibration-torch", "hartmann-torch"]
    contenders = "ours batched,ours vectorized,lean driver,sequential,botorch"
    argv = ["--sizes", "3", "--points", "20", "--rounds", "1", "--output", str(out)]
    assert BB.main([*argv, "--problems", ",".join(problems), "--contenders", contenders]) == 0
    data = json.loads(out.read_text())
    assert list(data["problems"]) == problems
    for name in problems:
        m = data["problems"][name]["3"]
        assert {"ours batched", "lean driver", "sequential"} <= set(m["seconds"])
        for contender in ("ours batched", "ours vectorized", "lean driver"):
            agree = m["vs_sequential"][contender]
            assert agree["same_nit"] == 1.0 and agree["max_rel_fun"] < 1e-10, (name, contender)
        assert set(m["bridge_s_per_problem_iteration"]) >= {"lean driver", "ours vectorized"}
    cpu = data["bridge_cpu_s_per_problem_iteration"]
    assert set(cpu) >= {"minimize_batched", "lean driver", "scipy.optimize.minimize"}
    printed = capsys.readouterr().out
    assert "| problem | B |" in printed and "Bridge: µs per problem per iteration" in printed
    if not BB.have_botorch():
        assert "botorch is not installed" in printed
    png = _hook().draw(data)
    assert png.axes  # a matplotlib Figure with one panel per problem
    assert len(png.axes) == len(problems)


def test_keep_marks_the_entries_a_run_did_not_measure(tmp_path: Path) -> None:
    """--keep: the stored entries this run does not measure stay, marked earlier_run, in the
    order of the sizes; the measured ones replace theirs."""
    old = {"machine": {"uptime": "then"}, "problems": {"p": {"2": {"x": 1}, "5": {"x": 2}}}}
    new = {"problems": {"p": {"3": {"x": 3}, "2": {"x": 4}}}}
    BB._keep_earlier(new, old)
    assert list(new["problems"]["p"]) == ["2", "3", "5"]
    assert new["problems"]["p"]["2"] == {"x": 4}
    assert new["problems"]["p"]["5"] == {"x": 2, "earlier_run": "then"}
    assert "(earlier run)" in BB.table({**new, "problems": {"p": {"5": {
        "seconds": {}, "bridge_s_per_problem_iteration": {}, "earlier_run": "then"}}}})


def test_the_docs_figure_draws_from_the_stored_results() -> None:
    pytest.importorskip("matplotlib")
    hook = _hook()
    assert hook.RESULTS.exists(), "run python -m benchmarks.batched to store its results"
    png = hook.FIGURES["batched_time.png"]()
    assert png.startswith(b"\x89PNG")


def test_benchmark_jax_problem(tmp_path: Path) -> None:
    """The JAX problem's batched function (compiled per size class) through the lean driver."""
    pytest.importorskip("jax")
    out = tmp_path / "batched.json"
    argv = ["--sizes", "3", "--points", "20", "--rounds", "1", "--output", str(out)]
    assert BB.main([*argv, "--problems", "calibration-jax", "--contenders", "lean driver"]) == 0
    m = json.loads(out.read_text())["problems"]["calibration-jax"]["3"]
    assert m["mean_nit"]["lean driver"] > 0 and m["jax_compile_seconds"] > 0
