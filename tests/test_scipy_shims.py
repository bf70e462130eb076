"""The shims that run SciPy's own tests through the package (tools/scipy_shims/)."""

from __future__ import annotations

import numpy as np
import scipy.optimize

from tools.scipy_shims import lsq_root


def _res(x: np.ndarray) -> np.ndarray:
    return np.array([x[0] - 1.0, 10.0 * (x[1] - x[0] ** 2), 0.5 * x[1]])


def _sys(x: np.ndarray) -> np.ndarray:
    return np.array([x[0] ** 2 + x[1] ** 2 - 4.0, x[0] * x[1] - 1.0])


def test_lsq_root_shim_matches_plain_scipy() -> None:
    ref = scipy.optimize.least_squares(_res, [2.0, 2.0], bounds=([0, 0], [3, 3]))
    res = lsq_root.least_squares(_res, [2.0, 2.0], bounds=([0, 0], [3, 3]))
    np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.fun, ref.fun, rtol=0, atol=1e-12)
    assert res.x.shape == ref.x.shape and res.active_mask.shape == ref.active_mask.shape
    assert res.nfev == ref.nfev and res.njev == ref.njev
    ref = scipy.optimize.root(_sys, [2.0, 0.5], method="hybr")
    res = lsq_root.root(_sys, [2.0, 0.5], method="hybr")
    np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=1e-12)
    assert res.nfev == ref.nfev


def test_lsq_root_shim_patch_restores() -> None:
    originals = scipy.optimize.least_squares, scipy.optimize.root
    restore = lsq_root.patch()
    try:
        assert scipy.optimize.least_squares is lsq_root.least_squares
        assert scipy.optimize.root is lsq_root.root
        # the package reaches SciPy's own functions, never the patched names
        res = scipy.optimize.least_squares(_res, [2.0, 2.0])
        assert res.success and res.x.shape == (2,)
    finally:
        restore()
    assert (scipy.optimize.least_squares, scipy.optimize.root) == originals
    lsq_root.patch()
    lsq_root.unpatch()
    assert (scipy.optimize.least_squares, scipy.optimize.root) == originals
