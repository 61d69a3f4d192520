"""merge() folds FiLM into the base exactly (within float rounding); unmerge/detach restore bits."""
import pytest
import torch

from adaptkit import NotMergeableError, attach_adapter
from models import NoNormGenerator, biggan_deep, biggan_inputs, tiny_cond_generator, tiny_generator
from test_attach import perturb, snapshot


@pytest.mark.parametrize(
    "make, inputs, options",
    [
        (tiny_cond_generator, lambda: (torch.randn(5, 16), torch.tensor([0, 1, 2, 3, 1])), {}),
        (tiny_cond_generator, lambda: (torch.randn(5, 16), torch.tensor([0, 1, 2, 3, 1])), {"train_conditional": True}),
        (tiny_generator, lambda: (torch.randn(5, 16),), {}),
        (lambda: NoNormGenerator().eval(), lambda: (torch.randn(5, 8),), {}),
        (tiny_generator, lambda: (torch.randn(5, 16),), {"targets": ["net.0", "net.1", "net.7"]}),
    ],
)
def test_merge_matches_hooks_and_unmerge_restores(make, inputs, options):
    model = make()
    x = inputs()
    base_state = snapshot(model)
    base_out = model(*x)
    handle = attach_adapter(model, "bsa", **options)
    perturb(handle)
    if options.get("train_conditional"):
        with torch.no_grad():
            for _, _, a in handle.layers():
                for d in a.deltas.values():
                    d.add_(torch.randn_like(d) * 0.1)
    adapted = model(*x)
    handle.merge()
    assert handle.merged
    merged = model(*x)
    assert torch.allclose(merged, adapted, atol=1e-5), (merged - adapted).abs().max()
    handle.unmerge()
    assert all(torch.equal(v, base_state[k]) for k, v in model.state_dict().items())
    assert torch.equal(model(*x), adapted)
    handle.merge()
    handle.detach()
    assert torch.equal(model(*x), base_out)


def test_unmergeable_target_changes_nothing():
    model = tiny_cond_generator()
    state = snapshot(model)
    handle = attach_adapter(model, "bsa", targets=["block1.bn1", "block1.bn1.bn"])  # inner BN has no affine
    with pytest.raises(NotMergeableError, match="block1.bn1.bn"):
        handle.merge()
    assert not handle.merged
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_biggan_is_not_mergeable():
    model = biggan_deep()
    handle = attach_adapter(model, "bsa")
    with pytest.raises(NotMergeableError, match="no affine weight and bias"):
        handle.merge()
    z, y, t = biggan_inputs(model)
    assert model(z, y, t).isfinite().all()
