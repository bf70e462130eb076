"""Run the test suite under several OpenBLAS kernels and thread counts, and compare the outcomes.

The last bits of floating point differ between CPUs (BLAS kernels, summation order, threads); a
test that passes on one machine and fails on the next depends on them. This script runs pytest
once per setting and reports, per setting, the counts and the tests that failed, so such tests
are found here instead of on a user's machine. It is run by hand, never by CI or the tests
(which must not set ``OPENBLAS_CORETYPE``: some machines set it on purpose).

Usage::

    python tools/fp_sweep.py                         # the whole suite, every setting
    python tools/fp_sweep.py tests/test_derivatives.py -k cobyqa
    python tools/fp_sweep.py --coretypes Haswell,Prescott --threads 1,2 tests/

Kernels this CPU cannot run (``SkylakeX`` without AVX-512) crash OpenBLAS: the script skips
those whose instruction sets ``/proc/cpuinfo`` does not list.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

#: OpenBLAS x86-64 kernels and the CPU flags each needs
KERNELS = {
    "Prescott": ("pni",),  # SSE3 is "pni" in /proc/cpuinfo
    "Nehalem": ("sse4_2",),
    "Sandybridge": ("avx",),
    "Haswell": ("avx2", "fma"),
    "Zen": ("avx2", "fma"),
    "SkylakeX": ("avx512f",),
}
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)")


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def runnable(kernels: list[str]) -> list[str]:
    flags = cpu_flags()
    return [k for k in kernels if not flags or all(f in flags for f in KERNELS.get(k, ()))]


def run_once(coretype: str | None, threads: str | None, pytest_args: list[str]) -> dict:
    env = dict(os.environ)
    for name, value in (("OPENBLAS_CORETYPE", coretype), ("OPENBLAS_NUM_THREADS", threads)):
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *pytest_args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    failed = sorted({m.group(1) for m in re.finditer(r"^(?:FAILED|ERROR) (\S+)", out, re.M)})
    tail = [ln for ln in out.splitlines() if " in " in ln and ("passed" in ln or "failed" in ln)]
    counts = {kind: int(n) for n, kind in _COUNT.findall(tail[-1])} if tail else {}
    return {"rc": proc.returncode, "failed": failed, "counts": counts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coretypes", default=",".join(KERNELS), help="comma-separated kernels")
    parser.add_argument("--threads", default="1,2", help="OPENBLAS_NUM_THREADS values")
    opts, pytest_args = parser.parse_known_args(argv)
    kernels = runnable(opts.coretypes.split(","))
    results = {}
    for ct in kernels:
        for th in opts.threads.split(","):
            res = run_once(ct, th, pytest_args)
            results[(ct, th)] = res
            counts = ", ".join(f"{v} {k}" for k, v in res["counts"].items())
            print(f"{ct:12s} threads={th}: rc={res['rc']} {counts}", flush=True)
            for name in res["failed"]:
                print(f"    FAILED {name}", flush=True)
    differing = set().union(*(set(r["failed"]) for r in results.values())) if results else set()
    print(f"\n{len(differing)} test(s) failed under some setting", flush=True)
    return 1 if differing or any(r["rc"] not in (0,) for r in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
