"""The pwgconv adapter: identity at init, real mixing inside groups only, per-sample weights, the
parameter budget, conditioning modes, checkpoints, BigGAN-deep, training."""
import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from adaptkit import (
    CallContext,
    AdapterConfigError,
    CallContextError,
    CallSpec,
    NotMergeableError,
    attach_adapter,
    load_adapter,
    save_adapter,
)
from adaptkit.cli import cli
from adaptkit_plugins.pwgconv import budget_ratio, group_size_for_ratio, grouped_pointwise
from models import NoNormGenerator, biggan_deep, biggan_inputs, tiny_cond_generator, tiny_generator
from test_attach import perturb


class Probe(nn.Module):
    """A "generator" whose output is its normalization layer's output, so the adapter's effect is
    visible directly: forward(z, h) = norm(h)."""

    def __init__(self, channels: int = 8, latent_dim: int | None = 4) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels).eval()
        if latent_dim is not None:
            self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h)


def probe_inputs(batch: int = 3, channels: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 4, generator=g), torch.randn(batch, channels, 5, 5, generator=g)


def set_weight_entry(adapter, group: int, row: int, col: int, value: float) -> None:
    """Make ΔW[group][row, col] = value for every sample (through the FC bias)."""
    k = adapter.group_size
    with torch.no_grad():
        adapter.fc.bias[group * k * k + row * k + col] = value


@pytest.mark.parametrize(
    "make, inputs",
    [
        (tiny_cond_generator, lambda: (torch.randn(4, 16), torch.tensor([0, 1, 2, 3]))),
        (tiny_generator, lambda: (torch.randn(4, 16),)),
        (lambda: NoNormGenerator().eval(), lambda: (torch.randn(4, 8),)),
    ],
)
def test_identity_at_init(make, inputs):
    model, args = make(), inputs()
    before = model(*args)
    handle = attach_adapter(model, "pwgconv")
    assert torch.equal(model(*args), before)
    assert handle.targets and handle.regularization().item() == 0.0


def test_off_diagonal_entry_mixes_channels_within_its_group_only():
    model = Probe()
    z, h = probe_inputs()
    base = model(z, h)
    handle = attach_adapter(model, "pwgconv", groups=2, targets=["norm"])  # groups of 4 channels
    set_weight_entry(handle.adapter_for("norm"), group=0, row=0, col=1, value=0.5)
    out = model(z, h)
    # output channel 0 now takes half of channel 1: what the authors' row-sum code cannot do
    assert torch.allclose(out[:, 0], base[:, 0] + 0.5 * base[:, 1])
    assert torch.equal(out[:, 1:], base[:, 1:])

    # with a full random generator, outputs of group 0 ignore inputs of group 1 and vice versa
    perturb(handle)
    h2 = h.clone()
    h2[:, 4:] += torch.randn_like(h2[:, 4:])
    out, out2 = model(z, h), model(z, h2)
    assert torch.equal(out[:, :4], out2[:, :4]) and not torch.allclose(out[:, 4:], out2[:, 4:])
    h3 = h.clone()
    h3[:, 1] += 1.0  # one input channel moves every output channel of its group
    out3 = model(z, h3)
    assert (out3[:, :4] - out[:, :4]).abs().amax(dim=(0, 2, 3)).min() > 0
    assert torch.equal(out3[:, 4:], out[:, 4:])


def test_sampling_sees_every_update_of_the_generator():
    """Without gradients the bias + identity sum is cached: in-place updates must still show."""
    model = Probe()
    z, h = probe_inputs()
    handle = attach_adapter(model, "pwgconv", groups=2, targets=["norm"])
    adapter = handle.adapter_for("norm")
    with torch.no_grad():
        base = model(z, h)
        set_weight_entry(adapter, group=1, row=0, col=0, value=1.0)  # channel 4 doubles
        assert torch.allclose(model(z, h)[:, 4], 2 * base[:, 4])
        handle.load_state_dict({k: torch.zeros_like(v) for k, v in handle.state_dict().items()})
        assert torch.equal(model(z, h), base)
    opt = torch.optim.SGD(handle.parameters(), lr=1.0)
    model(z, h).sum().backward()
    opt.step()
    with torch.no_grad():
        assert not torch.allclose(model(z, h), base)


def test_grouped_pointwise_matches_a_dense_block_diagonal_product():
    g = torch.Generator().manual_seed(0)
    b, c, k = 3, 12, 4
    x = torch.randn(b, c, 5, 6, generator=g)
    weight, bias = torch.randn(b, c * k, generator=g), torch.randn(b, c, generator=g)
    dense = torch.stack([torch.block_diag(*weight[n].view(c // k, k, k)) for n in range(b)])
    expected = torch.einsum("nij,njhw->nihw", dense, x) + bias[:, :, None, None]
    assert torch.allclose(grouped_pointwise(x, weight, bias, k), expected, atol=1e-5)
    identity = torch.eye(k).flatten().repeat(b, c // k)
    assert torch.equal(grouped_pointwise(x, identity, torch.zeros_like(bias), k), x)
    flat = x.flatten(2)  # any number of spatial dims, or none
    assert torch.allclose(grouped_pointwise(flat, weight, bias, k), expected.flatten(2), atol=1e-5)


def test_different_latents_give_different_per_sample_weights(cond_gen, cond_inputs):
    handle = attach_adapter(cond_gen, "pwgconv")
    perturb(handle)
    adapter = handle.adapter_for("block1.bn1")
    z, y = cond_inputs
    cond_gen(z, y)
    delta, bias = adapter.deviation()
    assert delta.shape == (6, 16 * adapter.group_size) and bias.shape == (6, 16)
    assert all(not torch.allclose(delta[0], delta[i]) for i in range(1, 6))
    same = torch.cat([z[:1], z[:1]])
    cond_gen(same, y[:2])
    d2, _ = adapter.deviation()
    assert torch.equal(d2[0], d2[1]) and torch.allclose(d2[0], delta[0])


@pytest.mark.parametrize("channels, ratio, k", [(64, 2, 4), (64, 4, 8), (64, 8, 16), (96, 2, 3), (120, 8, 15), (16, 8, 16)])
def test_group_size_for_ratio(channels, ratio, k):
    assert group_size_for_ratio(channels, ratio) == k
    assert abs(math.log(budget_ratio(k) / ratio)) <= math.log(1.25)


@pytest.fixture(scope="module")
def biggan():
    """One small BigGAN-deep for the module (building it is the slow part); tests detach what they attach."""
    return biggan_deep()


@pytest.mark.parametrize("ratio", [2, 4, 8])
def test_parameter_count_is_ratio_times_a_conditional_channelwise_generator(biggan, ratio):
    handle = attach_adapter(biggan, "pwgconv", ratio=ratio)
    try:
        counts = handle.parameter_counts()
        assert sum(counts.values()) == handle.num_parameters()
        for path, layer, adapter in handle.layers():
            d, c = adapter.cond_dim, adapter.info.channels
            channelwise = sum(p.numel() for p in nn.Linear(d, 2 * c).parameters())  # FC → (γ, β)
            assert counts[path] == budget_ratio(adapter.group_size) * channelwise
            if c >= 2 * ratio - 1:
                assert abs(math.log(counts[path] / channelwise / ratio)) <= math.log(1.25)
            else:  # too few channels for the budget: one group, the largest generator there is
                assert adapter.group_size == c
            assert adapter.group_size * adapter.groups == c
    finally:
        handle.detach()


def test_biggan_deep_reads_each_layers_condition_vector(biggan):
    z, y, trunc = biggan_inputs(biggan, batch=2)
    with torch.no_grad():
        before = biggan(z, y, trunc)
    handle = attach_adapter(biggan, "pwgconv", ratio=2)
    try:
        assert len(handle.targets) == 40 and "generator.bn" not in handle.targets
        adapter = handle.adapter_for("generator.layers.0.bn_0")
        assert adapter.mode == "layer" and adapter.cond_dim == biggan.config.z_dim * 2
        with torch.no_grad():
            assert torch.equal(biggan(z, y, trunc), before)
        perturb(handle)
        biggan(z, y, trunc).mean().backward()
        assert all(p.grad is None for p in biggan.parameters())
        assert all(p.grad is not None for p in handle.parameters())
        first = adapter.deviation()[0].detach()
        with torch.no_grad():
            biggan(z, y.flip(0), trunc)  # same latents, other classes: the condition vector changes
        assert not torch.allclose(adapter.deviation()[0], first)
    finally:
        handle.detach()


def test_biggan_latent_and_float_class_vectors(biggan):
    z, y, trunc = biggan_inputs(biggan, batch=2)
    handle = attach_adapter(biggan, "pwgconv", conditioning="latent", ratio=2, name="latent")
    assert handle.adapter_for("generator.layers.0.bn_0").cond_dim == biggan.config.z_dim
    handle.detach()
    call = CallSpec(latent=0, labels=1)  # BigGAN takes one-hot float class vectors
    handle = attach_adapter(biggan, "pwgconv", conditioning="latent+class", class_embed_dim=8, ratio=2, call=call)
    try:
        first = handle.adapter_for("generator.layers.0.bn_0")
        assert first.fc.in_features == biggan.config.z_dim + 8
        perturb(handle)
        with torch.no_grad():
            assert biggan(z, y, trunc).isfinite().all()
            cond = first.latent_and_class(CallContext.capture(call, (z, y, trunc), {}))
            assert torch.allclose(cond, torch.cat([z, y @ handle.shared["class_embedding"]], 1))
    finally:
        handle.detach()


def test_latent_plus_class_embedding(cond_gen, cond_inputs):
    z, y = cond_inputs
    before = cond_gen(z, y)
    handle = attach_adapter(cond_gen, "pwgconv", conditioning="latent+class", class_embed_dim=8, ratio=2)
    assert torch.equal(cond_gen(z, y), before)
    table = handle.shared["class_embedding"]
    assert table.shape == (4, 8)
    assert all(a.info.shared is handle.shared for _, _, a in handle.layers())  # one table, on the handle
    assert [k for k in handle.state_dict() if "class_embedding" in k] == ["shared.class_embedding"]
    assert handle.adapter_for("block2.bn1").fc.in_features == 16 + 8
    perturb(handle)
    out = cond_gen(z, y)
    other = cond_gen(z, (y + 1) % 4)
    assert not torch.allclose(out, other)
    out.mean().backward()
    assert table.grad is not None and table.grad.abs().sum() > 0
    with pytest.raises(CallContextError, match=r"class labels must lie in \[0, 4\)"):
        cond_gen(z, torch.full_like(y, 4))


def test_save_load_round_trip_is_exact(tmp_path, cond_inputs):
    model = tiny_cond_generator()
    handle = attach_adapter(model, "pwgconv", conditioning="latent+class", ratio=4, reg_weight=0.1)
    perturb(handle)
    out = model(*cond_inputs)
    path = save_adapter(handle, tmp_path / "pwg")
    fresh = tiny_cond_generator()
    loaded = load_adapter(fresh, path)
    assert loaded.config == handle.config and loaded.adapter_cls.name == "pwgconv"
    assert torch.equal(fresh(*cond_inputs), out)


def test_training_few_steps_lowers_the_loss(cond_gen, cond_inputs):
    z, y = cond_inputs
    with torch.no_grad():
        target = tiny_cond_generator(seed=3)(z, y)
    handle = attach_adapter(cond_gen, "pwgconv", ratio=2)
    opt = torch.optim.Adam(handle.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = F.l1_loss(cond_gen(z, y), target) + handle.regularization()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]
    assert all(p.grad is None for p in cond_gen.parameters())


def test_regularization_is_the_generated_deviation(cond_gen, cond_inputs):
    handle = attach_adapter(cond_gen, "pwgconv", reg_weight=0.5)
    perturb(handle)
    cond_gen(*cond_inputs)
    expected = 0
    for _, _, a in handle.layers():
        delta, bias = a.fc(cond_inputs[0]).split([16 * a.group_size, 16], dim=1)
        expected = expected + 0.5 * (delta.square().mean() + bias.square().mean())
    assert torch.allclose(handle.regularization(), expected)


def test_merge_is_refused_with_a_reason(cond_gen):
    handle = attach_adapter(cond_gen, "pwgconv")
    with pytest.raises(NotMergeableError, match="different 1×1 convolution for every sample"):
        handle.merge()
    assert not handle.merged


def test_layer_called_outside_a_root_call(cond_gen):
    attach_adapter(cond_gen, "pwgconv")
    x, y = torch.randn(2, 16, 4, 4), torch.tensor([0, 1])
    with pytest.raises(CallContextError, match="outside a call of the model"):
        cond_gen.block1.bn1(x, y)


@pytest.mark.parametrize(
    "model, options, message",
    [
        (tiny_cond_generator, {"conditioning": "style"}, "is not one of auto, latent"),
        (tiny_cond_generator, {"ratio": 0.5}, "must be a number ≥ 1"),
        (tiny_cond_generator, {"groups": 3}, "groups=3 does not divide the 16 channels"),
        (tiny_cond_generator, {"conditioning": "layer"}, "pass cond_dim="),
        (tiny_generator, {"conditioning": "latent+class"}, r"call=CallSpec\(num_classes="),
        (lambda: Probe().eval(), {"cond_dim": 0, "targets": ["norm"]}, "positive integer"),
    ],
)
def test_bad_options_fail_before_the_model_changes(model, options, message):
    model = model()
    with pytest.raises(AdapterConfigError, match=message):
        attach_adapter(model, "pwgconv", **options)
    assert all(p.requires_grad for p in model.parameters())


def test_unknown_latent_size_asks_for_cond_dim():
    model = Probe(latent_dim=None)
    with pytest.raises(AdapterConfigError, match="pass cond_dim= or call=CallSpec"):
        attach_adapter(model, "pwgconv", targets=["norm"])
    handle = attach_adapter(model, "pwgconv", targets=["norm"], call=CallSpec(latent_dim=4))
    assert handle.adapter_for("norm").cond_dim == 4


def test_wrong_latent_size_at_call_time():
    model = Probe()
    handle = attach_adapter(model, "pwgconv", targets=["norm"], cond_dim=5)
    assert handle.adapter_for("norm").cond_dim == 5
    with pytest.raises(CallContextError, match="the latent has 4 features .* built for 5"):
        model(*probe_inputs())


def test_fp16_base_stays_exact_at_init():
    model = tiny_generator().half()
    z = torch.randn(2, 16).half()
    before = model(z)
    attach_adapter(model, "pwgconv", ratio=2)
    out = model(z)
    assert out.dtype == torch.float16 and torch.equal(out, before)


def test_inspect_shows_groups_and_budget():
    result = CliRunner().invoke(cli, ["inspect", "python:models:tiny_cond_generator", "-a", "pwgconv"])
    assert result.exit_code == 0, result.output
    assert "4,624" in result.output and "group_size=16" in result.output and "budget=8.5x" in result.output


def test_sampling_and_interpolation_through_a_base():
    from adaptkit.bases import load_base
    from adaptkit.sample import StripEnds, interpolate_images, sample_images

    base = load_base("python:models:tiny_cond_generator")
    bare = sample_images(base, 4, seed=0)
    handle = attach_adapter(base.generator, "pwgconv", call=base.call, ratio=2)
    assert torch.equal(sample_images(base, 4, seed=0), bare)
    perturb(handle)
    adapted = sample_images(base, 4, seed=0)
    assert not torch.allclose(adapted, bare)
    z = torch.randn(2, 16)
    y = torch.tensor([0, 1])
    strip = interpolate_images(base, StripEnds(z, -z, y), steps=3)
    assert strip.shape == (2, 3, 3, 16, 16)
    with torch.no_grad():  # the ends are the adapted generator's own images of the end latents
        assert torch.allclose(strip[:, 0], base.generate(z, y).cpu(), atol=1e-6)
