"""Packaging promises: lazy framework imports, typed package, one version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dict_minimize

ROOT = Path(__file__).resolve().parents[1]


def test_import_does_not_import_frameworks() -> None:
    code = (
        "import sys, numpy as np, dict_minimize, dict_minimize.numpy_api\n"
        "r = dict_minimize.minimize(lambda d: (float(d['x'] @ d['x']), {'x': 2 * d['x']}),"
        " {'x': np.ones(2)})\n"
        "assert r.success\n"
        "heavy = [m for m in ('torch', 'jax', 'jaxlib', 'tensorflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_py_typed_and_version() -> None:
    pkg = Path(dict_minimize.__file__).parent
    assert (pkg / "py.typed").exists()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'version = { attr = "dict_minimize._version.__version__" }' in pyproject
    assert "__version__" in (pkg / "_version.py").read_text()


def test_constraints_pin_cpu_torch() -> None:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    assert "torch==2.13.0" in lines
