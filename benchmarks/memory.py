"""Peak memory of one solve of ``one_big``, measured in a fresh process.

``python -m benchmarks.memory --framework torch --contender ours-generic --dtype float64`` builds
the problem and its contender (imports, data, tensors, compiled functions: one warm-up solve),
then resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), solves once more and prints,
as one JSON line, how far the resident set rose above where it stood before that solve. Where the
mark cannot be reset, ``ru_maxrss`` (the process's lifetime peak) is reported instead, marked.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from typing import Any

from benchmarks import problems as P


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(framework: str, contender: str, dtype: str, scale: str) -> dict[str, Any]:
    """Peak RSS above the pre-solve level, in MiB and in float64 copies of the vector."""
    from benchmarks import worker

    fw = worker.FRAMEWORKS[framework]()
    import dict_minimize

    prob = P.build("one_big", dtype, scale)
    bench = worker.Bench(fw, dict_minimize, prob, scale)
    run = bench.runner(contender)
    run()  # warm up
    import gc

    gc.collect()
    resettable = _reset_peak()
    before = _status_kb("VmRSS") or 0
    run()
    peak = _status_kb("VmHWM") if resettable else None
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rise = max(peak - before, 0) * 1024
    return {
        "framework": framework,
        "contender": contender,
        "dtype": dtype,
        "n": prob.n,
        "rise_mib": rise / 2**20,
        "copies": rise / (8 * prob.n),
        "method": "VmHWM after clear_refs" if resettable else "ru_maxrss (lifetime)",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", required=True)
    parser.add_argument("--contender", required=True)
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--scale", default="full")
    args = parser.parse_args(argv)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    result = measure(args.framework, args.contender, args.dtype, args.scale)
    out.write(json.dumps(result) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
