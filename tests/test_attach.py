"""The hook system: identity at init, frozen base, exact detach, enable/disable, named adapters."""
import pytest
import torch
from torch import nn

import adaptkit
from adaptkit import AdapterNameError, attach_adapter, set_active_adapter
from models import NoNormGenerator, biggan_deep, biggan_inputs, tiny_generator


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def perturb(handle) -> None:
    with torch.no_grad():
        for p in handle.parameters():
            p.add_(torch.randn_like(p) * 0.3)


def test_identity_at_init_and_keys_unchanged(cond_gen, cond_inputs):
    before = cond_gen(*cond_inputs)
    keys = list(cond_gen.state_dict())
    names = [n for n, _ in cond_gen.named_modules()]
    handle = attach_adapter(cond_gen, "bsa")
    assert torch.equal(cond_gen(*cond_inputs), before)
    assert list(cond_gen.state_dict()) == keys
    assert [n for n, _ in cond_gen.named_modules()] == names
    assert handle.num_parameters() > 0


def test_default_targets_skip_output_layer(cond_gen):
    handle = attach_adapter(cond_gen, "bsa")
    assert handle.targets == ["block1.bn1", "block1.bn2", "block2.bn1", "block2.bn2"]
    assert "bn" not in handle.targets  # the final norm feeds the output conv: not adapted


def test_first_linear_option(cond_gen):
    handle = attach_adapter(cond_gen, "bsa", adapt_first_linear=True)
    assert handle.targets[0] == "linear"
    assert handle.adapter_for("linear").gamma.shape == (16 * 4 * 4,)


def test_gradients_only_in_adapter_and_base_unchanged_by_step(cond_gen, cond_inputs):
    for p in cond_gen.parameters():
        assert p.requires_grad
    base = snapshot(cond_gen)
    handle = attach_adapter(cond_gen, "bsa")
    opt = torch.optim.Adam(handle.parameters(), lr=0.1)
    loss = cond_gen(*cond_inputs).square().mean() + handle.regularization()
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in cond_gen.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in handle.parameters())
    opt.step()
    after = snapshot(cond_gen)
    assert all(torch.equal(base[k], after[k]) for k in base)


def test_detach_is_bitwise_exact_and_restores_flags(cond_gen, cond_inputs):
    cond_gen.linear.weight.requires_grad_(False)  # a flag the user set must come back too
    before = cond_gen(*cond_inputs)
    handle = attach_adapter(cond_gen, "bsa")
    perturb(handle)
    assert not torch.equal(cond_gen(*cond_inputs), before)
    handle.detach()
    assert torch.equal(cond_gen(*cond_inputs), before)
    assert not cond_gen.linear.weight.requires_grad
    assert all(p.requires_grad for n, p in cond_gen.named_parameters() if n != "linear.weight")
    assert not cond_gen._forward_hooks and not cond_gen._forward_pre_hooks
    assert all(not m._forward_hooks for m in cond_gen.modules())
    assert adaptkit.attached_adapters(cond_gen) == {}


def test_enabled_false_runs_bare_base(cond_gen, cond_inputs):
    before = cond_gen(*cond_inputs)
    handle = attach_adapter(cond_gen, "bsa")
    perturb(handle)
    adapted = cond_gen(*cond_inputs)
    with handle.enabled(False):
        assert torch.equal(cond_gen(*cond_inputs), before)
    assert torch.equal(cond_gen(*cond_inputs), adapted)


def test_regularization_formula(cond_gen):
    handle = attach_adapter(cond_gen, "bsa", reg_weight=0.5)
    assert handle.regularization().item() == 0.0
    perturb(handle)
    expected = sum(
        0.5 * (((a.gamma - 1) ** 2).mean() + (a.beta**2).mean()) for _, _, a in handle.layers()
    )
    assert torch.allclose(handle.regularization(), expected)


def test_named_adapters_switch_and_reuse_error(cond_gen, cond_inputs):
    base = cond_gen(*cond_inputs)
    a = attach_adapter(cond_gen, "bsa", name="a")
    perturb(a)
    out_a = cond_gen(*cond_inputs)
    b = attach_adapter(cond_gen, "film", name="b")  # newest is the only active one
    perturb(b)
    out_b = cond_gen(*cond_inputs)
    assert not torch.equal(out_a, out_b)
    set_active_adapter(cond_gen, "a")
    assert torch.equal(cond_gen(*cond_inputs), out_a)
    b.activate()
    assert torch.equal(cond_gen(*cond_inputs), out_b)
    set_active_adapter(cond_gen, None)
    assert torch.equal(cond_gen(*cond_inputs), base)
    with pytest.raises(AdapterNameError, match="already attached"):
        attach_adapter(cond_gen, "bsa", name="a")
    with pytest.raises(AdapterNameError, match="no adapter named 'c'"):
        set_active_adapter(cond_gen, "c")
    a.detach()
    b.detach()
    assert torch.equal(cond_gen(*cond_inputs), base)
    assert all(p.requires_grad for p in cond_gen.parameters())


def test_unconditional_and_no_norm_generators():
    gen = tiny_generator()
    z = torch.randn(4, 16)
    before = gen(z)
    handle = attach_adapter(gen, "bsa")
    assert handle.targets == ["net.1", "net.4"]  # the GroupNorm before the output conv is left alone
    assert torch.equal(gen(z), before)

    plain = NoNormGenerator().eval()
    z = torch.randn(3, 8)
    before = plain(z)
    handle = attach_adapter(plain, "bsa")
    assert handle.targets == ["conv1", "conv2"]  # conv fallback, output conv excluded
    assert torch.equal(plain(z), before)


def test_train_conditional_deltas(cond_gen, cond_inputs):
    before = cond_gen(*cond_inputs)
    handle = attach_adapter(cond_gen, "bsa", train_conditional=True)
    assert torch.equal(cond_gen(*cond_inputs), before)
    deltas = handle.adapter_for("block1.bn1").deltas
    assert set(deltas) == {"gamma/weight", "beta/weight"}
    cond_gen(*cond_inputs).sum().backward()
    assert deltas["gamma/weight"].grad.abs().sum() > 0
    with torch.no_grad():
        deltas["beta/weight"].add_(1.0)
    assert not torch.equal(cond_gen(*cond_inputs), before)
    assert torch.equal(cond_gen.block1.bn1.beta.weight, handle.base.block1.bn1.beta.weight)


def test_train_conditional_needs_conditional_layers():
    with pytest.raises(adaptkit.TargetSelectionError, match="no conditional"):
        attach_adapter(tiny_generator(), "bsa", train_conditional=True)


def test_fp16_base_keeps_dtype_and_identity():
    gen = tiny_generator().half()
    z = torch.randn(2, 16).half()
    before = gen(z)
    attach_adapter(gen, "bsa")
    out = gen(z)
    assert out.dtype == torch.float16 and torch.equal(out, before)


@pytest.mark.slow
def test_biggan_deep_default_config_identity_and_grads():
    model = biggan_deep(channel_width=128, num_classes=1000)  # BigGANConfig() defaults
    inputs = biggan_inputs(model)
    with torch.no_grad():
        before = model(*inputs)
    handle = attach_adapter(model, "bsa")
    assert "generator.bn" not in handle.targets and "generator.layers.0.bn_0" in handle.targets
    assert len(handle.targets) == 40  # 10 GenBlocks × 4 conditional BNs
    with torch.no_grad():
        assert torch.equal(model(*inputs), before)
    model(*inputs).mean().backward()
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is not None for p in handle.parameters())
    handle.detach()
    with torch.no_grad():
        assert torch.equal(model(*inputs), before)


def test_biggan_train_conditional_hooks_spectral_norm_linears():
    model = biggan_deep()
    inputs = biggan_inputs(model)
    before = model(*inputs).detach()
    handle = attach_adapter(model, "bsa", train_conditional=True, targets=r".*bn_\d")
    assert set(handle.adapter_for("generator.layers.0.bn_0").deltas) == {"scale/weight", "offset/weight"}
    assert torch.equal(model(*inputs), before)
    with pytest.raises(adaptkit.NotMergeableError, match="spectrally normalized"):
        handle.merge()
