"""Device placement: runs whenever a CUDA device is available (skipped otherwise)."""

from __future__ import annotations

from collections import OrderedDict

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_cuda_tensors_stay_on_their_device(dtype) -> None:
    from dict_minimize import minimize

    dev = torch.device("cuda")
    x0 = OrderedDict(
        a=torch.zeros(3, device=dev, dtype=dtype), b=torch.ones(2, 2, device=dev, dtype=dtype)
    )
    seen = set()

    def fun(d):
        seen.update(v.device.type for v in d.values())
        loss = ((d["a"] - 1) ** 2).sum() + ((d["b"] + 1) ** 2).sum()
        ga, gb = torch.autograd.grad(loss, [d["a"], d["b"]])
        return loss, {"a": ga, "b": gb}

    res = minimize(fun, x0, method="L-BFGS-B")
    assert seen == {"cuda"}
    for k in x0:
        assert res.x[k].device.type == "cuda" and res.x[k].dtype == dtype
        assert res.jac[k].device.type == "cuda"
    torch.testing.assert_close(res.x["a"].float().cpu(), torch.ones(3), atol=2e-2, rtol=0)


def test_mixed_devices() -> None:
    from dict_minimize import minimize

    x0 = {"gpu": torch.zeros(2, device="cuda"), "cpu": torch.zeros(2)}

    def fun(d):
        loss = ((d["gpu"] - 1) ** 2).sum() + ((d["cpu"] - 2) ** 2).sum().to("cuda")
        g1, g2 = torch.autograd.grad(loss, [d["gpu"], d["cpu"]])
        return loss, {"gpu": g1, "cpu": g2}

    res = minimize(fun, x0)
    assert res.x["gpu"].device.type == "cuda" and res.x["cpu"].device.type == "cpu"
