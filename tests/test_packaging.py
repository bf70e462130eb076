"""Packaging promises: lazy framework imports, typed package, one version, the extras, and the
examples' install hints when an optional library is missing."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib

import dict_minimize

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
#: extras for working on the package, not for using it
DEV_EXTRAS = {"test", "docs"}


def test_import_does_not_import_frameworks() -> None:
    code = (
        "import sys, numpy as np, dict_minimize, dict_minimize.numpy_api\n"
        "r = dict_minimize.minimize(lambda d: (float(d['x'] @ d['x']), {'x': 2 * d['x']}),"
        " {'x': np.ones(2)})\n"
        "assert r.success\n"
        "heavy = [m for m in ('torch', 'jax', 'jaxlib', 'tensorflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
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


def test_version_supersedes_the_released_package() -> None:
    version = pytest.importorskip("packaging.version")
    # 0.0.4 is the original package's last release on PyPI. A final release number, not a
    # pre-release: pip skips pre-releases when the index has a final one, so a wheel offered by
    # --find-links (the README's install) would lose to 0.0.4
    ours = version.Version(dict_minimize.__version__)
    assert ours > version.Version("0.0.4") and not ours.is_prerelease


# --- extras -------------------------------------------------------------------------------------


def extras() -> dict[str, list[str]]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return pyproject["project"]["optional-dependencies"]


def reached(names: set[str]) -> set[str]:
    """The extras ``names`` install, following ``dict_minimize[...]`` requirements."""
    table, seen, todo = extras(), set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for req in table[name]:
            nested = re.fullmatch(r"dict_minimize\[([\w,-]+)\]", req)
            if nested:
                todo.extend(nested.group(1).split(","))
    return seen


def test_all_extra_is_everything_a_user_can_use() -> None:
    user = set(extras()) - DEV_EXTRAS
    assert {"torch", "jax", "tensorflow", "plot", "progress", "dask"} <= user
    assert reached({"all"}) == user


def test_frameworks_extra_is_the_three_frameworks() -> None:
    assert reached({"frameworks"}) == {"frameworks", "torch", "jax", "tensorflow"}
    assert not reached({"all"}) & DEV_EXTRAS


def test_readme_demo_command_installs_what_the_demo_needs() -> None:
    readme = (ROOT / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if "-m dict_minimize.demo" in ln and "pip" in ln)
    assert "-c constraints.txt" in line
    names = re.search(r"-e '\.\[([\w,-]+)\]'", line)
    assert names, line
    # the demo's frameworks and figures, and tqdm for minimize(..., progress=True)
    installed = reached(set(names.group(1).split(",")))
    assert {"torch", "jax", "tensorflow", "plot", "progress"} <= installed


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_install_section_works_without_the_index(page: str) -> None:
    """Until this version is on PyPI, ``pip install dict_minimize`` gets the original 0.0.4:
    the install section says how to install from a checkout (with the constraints) or a wheel."""
    text = (ROOT / page).read_text()
    section = text[text.index("## Install") :]
    section = section[: section.index("\n## ", 1)]
    assert "0.0.4" in section
    assert "pip install -c constraints.txt" in section
    assert "python -m build" in section and ".whl" in section
    for extra in re.findall(r"\[([\w,-]+)\]'", section):
        assert set(extra.split(",")) <= set(extras()), extra


# --- the examples' hints when an optional library is missing ----------------------------------

#: (example, a library it imports, the install command its error must name)
HINTS = [
    ("beta_calibration", "torch", "dict_minimize[torch]"),
    ("deep_dream", "torch", "dict_minimize[torch]"),
    ("equinox_model", "equinox", "dict_minimize[equinox]"),
    ("equinox_model", "jax", "dict_minimize[jax]"),
    ("flax_model", "flax", "dict_minimize[flax]"),
    ("flax_model", "jax", "dict_minimize[jax]"),
    ("flower_paths", "torch", "dict_minimize[torch]"),
    ("full_batch_mlp", "torch", "dict_minimize[torch]"),
    ("keras_model", "keras", "dict_minimize[tensorflow]"),
    ("keras_model", "tensorflow", "dict_minimize[tensorflow]"),
    ("torch_module", "torch", "dict_minimize[torch]"),
]


def exec_example(name: str, monkeypatch: pytest.MonkeyPatch):
    """Run examples/<name>.py as a fresh module (the scripts import examples/_shared.py)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    mod_name = f"_dict_minimize_hint_check_{name}"
    spec = importlib.util.spec_from_file_location(mod_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, mod_name, module)
    spec.loader.exec_module(module)
    return module


def block(monkeypatch: pytest.MonkeyPatch, library: str) -> None:
    """Make ``import library`` fail as it does when the library is not installed (its
    submodules too: one already imported by another test is found without its parent)."""
    for name in [n for n in sys.modules if n == library or n.startswith(library + ".")]:
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, library, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("example", "library", "extra"), HINTS)
def test_example_names_the_extra_it_misses(example, library, extra, monkeypatch) -> None:
    # the error names the first missing library: the others the example needs must be there
    for other in [lib for ex, lib, _ in HINTS if ex == example and lib != library]:
        if importlib.util.find_spec(other) is None:
            pytest.skip(f"{other} is not installed either")
    block(monkeypatch, library)
    with pytest.raises(ImportError) as info:
        exec_example(example, monkeypatch)
    assert type(info.value) is ImportError  # not the bare ModuleNotFoundError
    message = str(info.value)
    assert f"{example}.py needs {library}, which is not installed" in message
    assert f"pip install '{extra}'" in message


def test_every_example_with_optional_imports_has_a_hint() -> None:
    """Each script that imports a framework or model library at the top does it in
    ``with requires(__file__):`` (and is in HINTS)."""
    optional = ("torch", "jax", "tensorflow", "keras", "flax", "equinox")
    for path in sorted(EXAMPLES.glob("*.py")):
        top = [ln for ln in path.read_text().splitlines() if ln.startswith(("import ", "from "))]
        bare = [ln for ln in top if ln.split()[1].partition(".")[0] in optional]
        assert not bare, (path.name, bare)
    assert {name for name, _, _ in HINTS} >= {
        p.stem for p in EXAMPLES.glob("*.py") if "with requires(__file__):" in p.read_text()
    }


def test_deep_dream_names_scikit_learn(monkeypatch) -> None:
    pytest.importorskip("torch")
    module = exec_example("deep_dream", monkeypatch)
    block(monkeypatch, "sklearn")
    with pytest.raises(ImportError, match=r"deep_dream.py needs sklearn.*pip install scikit-learn"):
        module.load_data(np.random.default_rng(0))


def test_floors_script_tests_the_floors_pyproject_claims() -> None:
    """tools/check_versions.sh floors installs exactly the oldest versions pyproject accepts."""
    script = (ROOT / "tools" / "check_versions.sh").read_text()
    pins = dict(re.findall(r'"([\w-]+)==([\d.]+)"', script))
    table = extras()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    claims = pyproject["project"]["dependencies"] + table["jax"] + table["tensorflow"]
    floors = dict(re.fullmatch(r"([\w-]+)>=([\d.]+)", req).groups() for req in claims)  # type: ignore[union-attr]
    assert set(floors) == {"numpy", "scipy", "threadpoolctl", "jax", "tensorflow-cpu"}
    for name, floor in floors.items():
        assert pins[name].split(".")[: len(floor.split("."))] == floor.split("."), name
    # PyTorch's floor is the version constraints.txt pins (no other CPU wheel to test here)
    assert table["torch"] == ["torch>=2.13"]
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().splitlines()
    requires = pyproject["project"]["requires-python"]
    assert requires == ">=3.11" and "find_python 3.11" in script


def test_doctest_collection_leaves_out_exactly_the_modules_of_missing_frameworks() -> None:
    """The root conftest.py names every module that cannot be imported without its framework
    (else ``pytest`` fails to collect its doctests where that framework is not installed)."""
    spec = importlib.util.spec_from_file_location("_root_conftest", ROOT / "conftest.py")
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    code = (
        "import importlib, pkgutil, sys\n"
        "for name in ('torch', 'tensorflow', 'jax'):\n"
        "    sys.modules[name] = None\n"
        "import dict_minimize\n"
        "for m in pkgutil.walk_packages(dict_minimize.__path__, 'dict_minimize.'):\n"
        "    try:\n"
        "        importlib.import_module(m.name)\n"
        "    except ImportError:\n"
        "        print(m.name.replace('.', '/') + '.py')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    failing = set(proc.stdout.split())
    assert failing == {path for paths in conftest.NEEDS.values() for path in paths}
