#!/usr/bin/env bash
# The tests against other releases than constraints.txt pins: the newest (what a user gets from
# `pip install` today) or the floors (the oldest versions pyproject.toml accepts).
#
#   tools/check_versions.sh newest [full] [pytest arguments...]
#   tools/check_versions.sh floors [full] [pytest arguments...]
#
# Each run makes a fresh virtual environment under $TMPDIR, installs the package with NumPy,
# SciPy and JAX at those versions (PyTorch and TensorFlow are left out: no CPU wheel of PyTorch
# for the newest Python here, and each is a large download; `full` adds TensorFlow, Flax,
# Equinox, matplotlib, tqdm, Dask and the test references, and runs the whole suite), runs
# mypy, `python -m dict_minimize.demo`, then pytest with warnings as errors (pyproject's settings):
# by default FAST, the tests of the parts that depend on those releases. Exits non-zero when
# anything fails. Python: $PYTHON, else python3.12 (newest) or python3.11 (floors) from PATH
# or pyenv. .ci/run runs `newest`; run `floors` by hand when pyproject's floors change.
set -euo pipefail
cd "$(dirname "$0")/.."

which="${1:-}"
shift || true
full=0
if [[ "${1:-}" == full ]]; then
    full=1
    shift
fi

find_python() {  # python$1 from PATH if it runs (pyenv's shims may not), else pyenv's newest $1.x
    if "python$1" -c "" 2>/dev/null; then
        command -v "python$1"
        return
    fi
    local found
    found=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$1".*/bin/python 2>/dev/null | sort -V | tail -1)
    [[ -n "$found" ]] && echo "$found" && return
    echo "no python$1 found: set PYTHON" >&2
    return 1
}

# the floors: keep them equal to pyproject.toml's lower bounds (tests/test_packaging.py checks)
# (SciPy 1.17: the first where a callback's StopIteration ends SLSQP cleanly, 1.16 for COBYLA;
# JAX 0.8: jax.enable_x64 and jax.sharding.make_single_device_sharding; NumPy 2.0: JAX 0.8's
# floor; TensorFlow 2.19: the first that shares ml_dtypes with JAX 0.8)
FLOORS=(
    "numpy==2.0.2" "scipy==1.17.0" "jax==0.8.0" "jaxlib==0.8.0" "threadpoolctl==3.1.0"
)
FLOORS_FULL=("tensorflow-cpu==2.19.0")
NEWEST=(numpy scipy jax jaxlib threadpoolctl greenlet)
NEWEST_FULL=(tensorflow-cpu keras flax equinox matplotlib tqdm "dask[distributed]" cloudpickle
    pandas scikit-learn betacal mkdocs-material "mkdocstrings[python]")
TOOLS=(pytest hypothesis pytest-timeout mypy)
# the tests of what depends on NumPy, SciPy and JAX releases (1.5 to 3 minutes)
FAST=(
    tests/test_minimize.py tests/test_scipy_contract.py tests/test_least_squares.py
    tests/test_root.py tests/test_autodiff_jax.py tests/test_packaging.py
    tests/test_lbfgsb_batch.py tests/test_batched.py
)

case "$which" in
newest)
    python="${PYTHON:-$(find_python 3.12)}"
    packages=("${NEWEST[@]}")
    ((full)) && packages+=("${NEWEST_FULL[@]}")
    upgrade=(--upgrade --upgrade-strategy eager)
    ;;
floors)
    python="${PYTHON:-$(find_python 3.11)}"
    packages=("${FLOORS[@]}")
    ((full)) && packages+=("${FLOORS_FULL[@]}" flax equinox matplotlib tqdm "dask[distributed]"
        cloudpickle pandas scikit-learn betacal)
    upgrade=()
    ;;
*)
    echo "usage: tools/check_versions.sh newest|floors [full] [pytest arguments...]" >&2
    exit 2
    ;;
esac

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
venv="$tmp/venv"
start=$SECONDS
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# no constraints.txt here: the point is other versions than it pins; the package installs
# without its extras, so that pip checks its requirements against these versions
"$venv/bin/python" -m pip install -q "${upgrade[@]}" "${packages[@]}" "${TOOLS[@]}" -e .
echo "== $which: installed in $((SECONDS - start)) s with $("$venv/bin/python" -V)"
"$venv/bin/python" -m pip list --format=freeze 2>/dev/null |
    grep -iE '^(numpy|scipy|jax|jaxlib|ml.dtypes|tensorflow-cpu|keras|flax|equinox)==' | tr '\n' ' '
echo

start=$SECONDS
# types against these releases' stubs (PyTorch's and TensorFlow's ignores are unused without them)
"$venv/bin/mypy" --no-warn-unused-ignores --cache-dir "$tmp/mypy"
"$venv/bin/python" -m dict_minimize.demo --out "$tmp/demo"
if ((full)); then
    tests=()
else
    tests=("${FAST[@]}")
fi
"$venv/bin/python" -m pytest -q -p no:cacheprovider "${tests[@]}" "$@"
echo "== $which: mypy, demo and tests in $((SECONDS - start)) s"
