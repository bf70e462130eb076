"""SciPy's own optimize tests, run with plain SciPy and through dict_minimize, side by side.

For each target (a shim module in ``tools/scipy_shims/``: ``TEST_FILES``, ``KNOWN``,
``patch()``), the test files are copied from the installed SciPy's ``scipy/optimize/tests/``
into a scratch folder under the system's temp dir (never into the repository), then run twice
by pytest in subprocesses: as shipped (plain SciPy) and with the shim's ``patch()`` applied
before the test modules import ``scipy.optimize``'s names (through the package). Outcomes are
collected per test id by a small plugin in the scratch ``conftest.py``.

The table gives, per file: the tests that pass with plain SciPy, those that pass through the
package, those that fail through the package and are listed in the shim's ``KNOWN`` (the
documented differences, docs/guide/scipy-differences.md), and those that fail unexpectedly.
The exit status is 1 when any test passes with plain SciPy and fails through the package
without being listed in ``KNOWN`` (or a listed one passes: the list must stay honest), else 0.

Usage::

    python tools/scipy_suite.py [--only minimize,lsq_root] [--jobs N] [--slow] [-k EXPR]

Tests SciPy marks ``slow`` or ``xslow`` are skipped unless ``--slow`` is given (SciPy's own
default test run skips them too).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHIMS = Path(__file__).resolve().parent / "scipy_shims"

_CONFTEST = '''\
"""Written by tools/scipy_suite.py: SciPy's fixtures, the shim's patch, an outcome log."""
import importlib.util
import json
import os

_shim = os.environ.get("DM_SUITE_SHIM")
if _shim:  # before any test module imports scipy.optimize's names; imported by name, so that
    # what it wraps pickles into worker processes (options={"workers": pool.map})
    importlib.import_module(_shim).patch()

from scipy.conftest import *  # noqa: E402,F403  (SciPy's markers, fixtures and setup)

_OUT = os.environ["DM_SUITE_OUT"]
_outcomes = {}


def pytest_runtest_logreport(report):
    nodeid = report.nodeid.split("/", 1)[-1]
    if report.failed:
        _outcomes[nodeid] = "failed"
    elif report.when == "call" or (report.skipped and nodeid not in _outcomes):
        _outcomes[nodeid] = "skipped" if report.skipped else "passed"


def pytest_sessionfinish(session, exitstatus):
    with open(_OUT, "w") as f:
        json.dump(_outcomes, f)
'''

_INI = """\
[pytest]
addopts = -p no:cacheprovider
junit_family = xunit2
filterwarnings =
    error
    always::scipy._lib._testutils.FPUModeChangeWarning
    ignore:.*The 'disp' and 'iprint' options of the L-BFGS-B solver are deprecated.*
"""


def load_shims(only: list[str] | None) -> dict[str, ModuleType]:
    """The targets: every module of tools/scipy_shims (or those named in ``only``)."""
    shims: dict[str, ModuleType] = {}
    for path in sorted(SHIMS.glob("*.py")):
        if path.name.startswith("_") or (only and path.stem not in only):
            continue
        spec = importlib.util.spec_from_file_location(f"_scipy_shim_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.__file__ = str(path)
        shims[path.stem] = module
    if only and set(only) - set(shims):
        raise SystemExit(f"unknown target(s): {', '.join(sorted(set(only) - set(shims)))}")
    return shims


def scipy_tests() -> Path:
    import scipy.optimize

    return Path(scipy.optimize.__file__).resolve().parent / "tests"


def make_scratch(files: list[str], folder: Path) -> Path:
    """The scratch package: the test files, their helpers (non-test modules, data folders)."""
    src = scipy_tests()
    pkg = folder / "scipy_optimize_tests"
    pkg.mkdir(parents=True)
    for item in src.iterdir():
        if item.name == "__pycache__":
            continue
        if item.is_dir():
            shutil.copytree(item, pkg / item.name)
        elif item.suffix == ".py" and (not item.name.startswith("test") or item.name in files):
            shutil.copy2(item, pkg / item.name)
    missing = [f for f in files if not (pkg / f).exists()]
    if missing:
        raise SystemExit(f"not in {src}: {', '.join(missing)}")
    (folder / "conftest.py").write_text(_CONFTEST)
    (folder / "pytest.ini").write_text(_INI)
    return pkg


def run_pytest(
    folder: Path, files: list[str], shim: str | None, tag: str, extra: list[str]
) -> tuple[dict[str, str], float, str]:
    """Run pytest on ``files``; (outcome per test id, seconds, the tail of its output)."""
    out = folder / f"outcomes-{tag}.json"
    env = dict(os.environ)
    env["DM_SUITE_OUT"] = str(out)
    env.pop("DM_SUITE_SHIM", None)
    if shim is not None:
        env["DM_SUITE_SHIM"] = shim
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(folder),
        "-c",
        str(folder / "pytest.ini"),
        *extra,
        *[f"scipy_optimize_tests/{f}" for f in files],
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if not out.exists():
        raise SystemExit(
            f"pytest ({tag}) wrote no outcomes (exit {proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads(out.read_text()), seconds, proc.stdout[-2000:]


def compare(
    files: list[str], plain: dict[str, str], through: dict[str, str], known: dict[str, str]
) -> tuple[list[list[Any]], list[str], list[str]]:
    """Per-file rows, the unexpected failures, and the known ones that passed."""
    rows: list[list[Any]] = []
    unexpected: list[str] = []
    stale: list[str] = []
    for name in files:
        ids = [t for t in plain if t.split("::", 1)[0] == name]
        p = [t for t in ids if plain[t] == "passed"]
        t_pass = [t for t in p if through.get(t) == "passed"]
        lost = [t for t in p if through.get(t) != "passed"]
        k = [t for t in lost if t in known]
        u = [t for t in lost if t not in known]
        stale += [t for t in t_pass if t in known]
        extra = [t for t in through if t.split("::", 1)[0] == name and t not in plain]
        unexpected += u + [f"{t} (not run by plain SciPy)" for t in extra]
        rows.append([name, len(p), len(t_pass), len(k), len(u)])
    return rows, unexpected, stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated targets (shim module names)")
    parser.add_argument("--jobs", type=int, default=2, help="pytest processes at once")
    parser.add_argument("--slow", action="store_true", help="run SciPy's slow tests too")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression (a subset)")
    parser.add_argument("--files", help="comma-separated test files (a subset of the target's)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every lost test")
    opts = parser.parse_args(argv)
    shims = load_shims(opts.only.split(",") if opts.only else None)
    extra = ["--timeout=300"] if importlib.util.find_spec("pytest_timeout") else []
    if not opts.slow:
        extra += ["-m", "not slow and not xslow"]
    if opts.keyword:
        extra += ["-k", opts.keyword]
    wanted = set(opts.files.split(",")) if opts.files else None

    scratch = Path(tempfile.mkdtemp(prefix="dm-scipy-suite-"))
    start = time.perf_counter()
    try:
        all_files = sorted({f for m in shims.values() for f in m.TEST_FILES})
        make_scratch(all_files, scratch)
        jobs = []
        for name, module in shims.items():
            files = [f for f in module.TEST_FILES if wanted is None or f in wanted]
            if not files:
                continue
            jobs.append((name, files, None, f"{name}-plain"))
            jobs.append((name, files, f"tools.scipy_shims.{name}", f"{name}-through"))
        with ThreadPoolExecutor(max(1, opts.jobs)) as pool:
            futures = [
                pool.submit(run_pytest, scratch, files, shim, tag, extra)
                for _, files, shim, tag in jobs
            ]
            results = [f.result() for f in futures]
        failed = False
        for i in range(0, len(jobs), 2):
            name, files = jobs[i][0], jobs[i][1]
            (plain, t_plain, _), (through, t_through, tail) = results[i], results[i + 1]
            known = shims[name].KNOWN
            rows, unexpected, stale = compare(files, plain, through, known)
            print(f"\n{name}: plain SciPy {t_plain:.0f} s, through dict_minimize {t_through:.0f} s")
            head = ["file", "plain passed", "through passed", "known", "unexpected"]
            widths = [max(len(head[0]), *(len(r[0]) for r in rows)), 12, 14, 5, 10]
            print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
            for row in [*rows, ["total", *(sum(r[j] for r in rows) for j in range(1, 5))]]:
                print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
            for t in unexpected:
                print(f"  UNEXPECTED: {t}")
            for t in stale:
                print(f"  KNOWN BUT PASSED (remove from KNOWN): {t}")
            if opts.verbose:
                for t in sorted(t for t in known if plain.get(t) == "passed"):
                    print(f"  known: {t}: {known[t]}")
            failed |= bool(unexpected or stale)
            if unexpected and not any(through.values()):
                print(tail)
        print(f"\n{time.perf_counter() - start:.0f} s in all; {'FAILED' if failed else 'OK'}")
        return 1 if failed else 0
    finally:
        if opts.keep:
            print(f"scratch folder kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
