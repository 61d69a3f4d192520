"""The moving average of the trained parameters: its update rule, and swapping it in and out bitwise."""
import torch
from torch import nn

from adaptkit.train.ema import WARMUP, ParameterEMA


def test_update_follows_the_warmed_up_decay():
    p = nn.Parameter(torch.zeros(3))
    ema = ParameterEMA({"p": p}, decay=0.5)
    expected = torch.zeros(3)
    for t in range(1, 6):
        with torch.no_grad():
            p.fill_(float(t))
        ema.update(t)
        decay = min(0.5, t / (WARMUP - 1 + t))  # 0.1, 0.18, 0.25, 0.31, then 0.5 from t = 9
        expected = decay * expected + (1 - decay) * t
        assert torch.allclose(ema.average["p"], expected)


def test_applied_swaps_the_average_in_and_restores_the_parameters_bitwise():
    p = nn.Parameter(torch.randn(4, generator=torch.Generator().manual_seed(0)))
    before = p.detach().clone()
    ema = ParameterEMA({"p": p}, decay=0.9)
    with torch.no_grad():
        p.mul_(1 / 3)
    ema.update(100)  # past the warm-up: the decay is 0.9
    live = p.detach().clone()
    with ema.applied():
        assert torch.equal(p, ema.average["p"]) and not torch.equal(p, live)
    assert torch.equal(p, live)
    assert torch.allclose(ema.average["p"], 0.9 * before + 0.1 * live)
