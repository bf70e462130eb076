"""The comparison examples: examples/deep_dream.py, full_batch_mlp.py and flower_paths.py.

Each runs through ``main`` at small sizes (a second or two each), writes real PNG files of the
expected pixel size, validates its arguments, and has doctests that run. The claims checked
hold with wide margins at these sizes (never exact floats): the dreams stay inside the pixel
bounds, L-BFGS-B beats SGD on the MLP at a small equal budget (about 0.02 vs 0.15 training MSE
when this was written), and every flower path starts at (20, 20) within its budget.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tests.test_examples import load_example

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DOCTEST_FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


@pytest.fixture(scope="module")
def dream_mod():
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    return load_example("deep_dream")


@pytest.fixture(scope="module")
def mlp_mod():
    pytest.importorskip("torch")
    return load_example("full_batch_mlp")


@pytest.fixture(scope="module")
def flower_mod():
    pytest.importorskip("torch")
    return load_example("flower_paths")


def check_png(path, size: tuple[int, int]) -> None:
    """``path`` is a real PNG of ``size`` (width, height) pixels with more than one colour."""
    image = pytest.importorskip("matplotlib.image")
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    pixels = image.imread(path)
    assert (pixels.shape[1], pixels.shape[0]) == size
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 1


def check_table(out: str, names) -> None:
    """compare_table's header and rule are printed, with a row per optimizer."""
    assert "optimizer" in out and "grad evals" in out and "seconds" in out and "-----" in out
    for name in names:
        assert f"\n{name} " in out, name


# --- deep dream ---------------------------------------------------------------------------


def test_deep_dream_main_prints_and_saves(dream_mod, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    argv = ["--epochs", "1", "--budget", "6", "--digits", "2", "--digit", "1"]
    assert dream_mod.main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    check_table(out, dream_mod.optimizers())
    assert "digit 1:" in out and "all 2 digits" in out and "test accuracy" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dream_convergence.png", "dreams.png"]
    for path in tmp_path.iterdir():
        assert str(path) in out
    check_png(tmp_path / "dream_convergence.png", (960, 360))  # 12 x 4.5 in at 80 dpi
    # 2 digits: (1.2 * 2 + 1.5) x 1.3 * (5 optimizers + the start) in
    check_png(tmp_path / "dreams.png", (312, 624))


def test_deep_dream_stays_in_the_pixel_bounds(dream_mod):
    res = dream_mod.dream(epochs=1, budget=12, digits=[0, 7])
    assert res.traces.keys() == {0, 7}
    for runs in res.traces.values():
        assert list(runs) == list(dream_mod.optimizers())
        for name, trace in runs.items():
            assert trace.x is not None and int(trace.njev[-1]) <= 12, name
            images = np.stack([row["image"].numpy() for row in trace.x])
            assert images.min() >= 0.0 and images.max() <= dream_mod.PIXEL_MAX, name
            assert images.shape[1:] == (8, 8)
    # the bounds are active: some dream pixels sit on them (ReLU logits grow without bound)
    final = res.final_image(0, "L-BFGS-B").numpy()
    assert (final == 0.0).any() or (final == dream_mod.PIXEL_MAX).any()


def test_deep_dream_without_matplotlib(dream_mod, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(dream_mod, "available", lambda name: name != "matplotlib")
    assert (
        dream_mod.main(["--epochs", "1", "--budget", "2", "--digits", "1", "--out", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    assert "figures skipped: matplotlib is not installed" in out and "dict_minimize[plot]" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--budget", "1"], "--budget must be at least 2"),
        (["--digits", "11"], "--digits must be in 1..10"),
        (["--digits", "3", "--digit", "3"], "--digit must be in 0..2"),
        (["--seed", "-1"], "non-negative"),
        (["--start", "grey"], "invalid choice"),
    ],
)
def test_deep_dream_bad_arguments(dream_mod, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        dream_mod.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_deep_dream_doctests(dream_mod):
    result = doctest.testmod(dream_mod, optionflags=DOCTEST_FLAGS)
    assert result.attempted >= 8 and result.failed == 0


# --- full-batch MLP -----------------------------------------------------------------------


def test_mlp_main_prints_and_saves(mlp_mod, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    argv = ["--size", "60", "--budget", "20", "--target", "0.2", "--seed", "1"]
    assert mlp_mod.main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    check_table(out, mlp_mod.optimizers())
    assert "evals to 0.2" in out and "evals to train MSE 0.2" in out and "test MSE" in out
    assert "60 training and 60 test points" in out and "1153 parameters" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp_convergence.png", "mlp_fit.png"]
    for path in tmp_path.iterdir():
        assert str(path) in out
        check_png(path, (640, 400))  # 8 x 5 in at 80 dpi


def test_mlp_lbfgsb_beats_sgd_at_a_small_equal_budget(mlp_mod):
    res = mlp_mod.fit(size=100, budget=40, target=0.05)
    assert list(res.traces) == list(mlp_mod.optimizers())
    sgd = f"SGD lr={mlp_mod.SGD_LR:g} m={mlp_mod.SGD_MOMENTUM:g}"
    for trace in res.traces.values():
        assert int(trace.njev[-1]) <= 40
    lbfgsb, sgd_final = res.mse("L-BFGS-B"), res.mse(sgd)
    assert lbfgsb < sgd_final / 3  # about 0.018 vs 0.147
    assert res.traces["L-BFGS-B"].evals_to(0.05) is not None
    assert res.traces[sgd].evals_to(0.05) is None
    # the final parameters are the trace's last point: its value is the trace's last value
    assert abs(lbfgsb - float(res.traces["L-BFGS-B"].fun[-1])) < 1e-12
    # the module was not touched: x0 was a copy of its parameters
    torch = pytest.importorskip("torch")
    fresh = mlp_mod.initial_params(res.net)
    final = res.final_params("L-BFGS-B")
    assert not torch.equal(fresh["0.weight"], final["0.weight"])


def test_mlp_without_matplotlib(mlp_mod, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(mlp_mod, "available", lambda name: name != "matplotlib")
    assert mlp_mod.main(["--size", "20", "--budget", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "figures skipped: matplotlib is not installed" in out and "dict_minimize[plot]" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--size", "9"], "--size must be at least 10"),
        (["--budget", "1"], "--budget must be at least 2"),
        (["--target", "0"], "--target must be a positive MSE"),
        (["--target", "nan"], "--target must be a positive MSE"),
        (["--seed", "-2"], "non-negative"),
        (["--size", "ten"], "invalid int value"),
    ],
)
def test_mlp_bad_arguments(mlp_mod, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        mlp_mod.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_mlp_doctests(mlp_mod):
    result = doctest.testmod(mlp_mod, optionflags=DOCTEST_FLAGS)
    assert result.attempted >= 15 and result.failed == 0


# --- flower -------------------------------------------------------------------------------


def test_flower_main_prints_and_saves(flower_mod, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert flower_mod.main(["--budget", "15", "--lrs", "1", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    names = list(flower_mod.optimizers([1.0, 3.0]))
    assert names == ["L-BFGS-B", "BFGS", "Newton-CG", "Adam lr=1", "Adam lr=3", "AdamW lr=1",
                     "AdamW lr=3"]  # fmt: skip
    check_table(out, names)
    assert "final - f_min" in out and "distance to origin" in out and "ended at (x, y)" in out
    assert [p.name for p in tmp_path.iterdir()] == ["flower_paths.png"]
    assert str(tmp_path / "flower_paths.png") in out
    check_png(tmp_path / "flower_paths.png", (1120, 480))  # 14 x 6 in at 80 dpi


def test_flower_paths_start_at_20_20_within_the_budget(flower_mod):
    budget = 25
    fn, traces = flower_mod.run(budget=budget, lrs=[0.1, 1.0])
    assert fn.start == {"x": 20.0, "y": 20.0}
    assert list(traces) == list(flower_mod.optimizers([0.1, 1.0]))
    for name, trace in traces.items():
        assert trace.x is not None and len(trace.x) == len(trace), name
        assert (float(trace.x[0]["x"]), float(trace.x[0]["y"])) == (20.0, 20.0), name
        assert abs(float(trace.fun[0]) - float(fn(20.0, 20.0))) < 1e-12, name
        assert int(trace.njev[-1]) <= budget and np.all(np.diff(trace.njev) >= 0), name
        assert len(trace) <= budget + 1, name
        if trace.result is None:  # a framework optimizer: one step per gradient evaluation
            assert len(trace) == budget + 1 and int(trace.njev[-1]) == budget, name
    # the quasi-Newton methods go down the cone: f below 0, closer than 1 to the origin
    for name in ("L-BFGS-B", "BFGS"):
        x, y = flower_mod.end_point(traces[name])
        assert float(traces[name].fun[-1]) < 0 and fn.distance({"x": x, "y": y}) < 1, name
    # Adam at lr 0.1 moves about 0.1 per coordinate and step: still far up the slope
    x, y = flower_mod.end_point(traces["Adam lr=0.1"])
    assert 15 < x < 19.5 and 15 < y < 19.5


def test_flower_without_matplotlib(flower_mod, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(flower_mod, "available", lambda name: name != "matplotlib")
    assert flower_mod.main(["--budget", "3", "--lrs", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "figure skipped: matplotlib is not installed" in out and "dict_minimize[plot]" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--budget", "1"], "--budget must be at least 2"),
        (["--lrs", "1", "0"], "--lrs must be positive; got 0"),
        (["--lrs", "-3"], "--lrs must be positive; got -3"),
        (["--lrs", "inf"], "--lrs must be positive; got inf"),
        (["--budget", "x"], "invalid int value"),
    ],
)
def test_flower_bad_arguments(flower_mod, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        flower_mod.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_flower_doctests(flower_mod):
    result = doctest.testmod(flower_mod, optionflags=DOCTEST_FLAGS)
    assert result.attempted >= 5 and result.failed == 0
