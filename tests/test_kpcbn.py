"""kpcbn: new classes by knowledge propagation; old classes bitwise untouched; bake; checkpoints."""
import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from adaptkit import (
    AdaptkitError,
    CallContextError,
    CallSpec,
    NotMergeableError,
    TargetSelectionError,
    attach_adapter,
    attached_adapters,
    load_adapter,
    save_adapter,
)
from adaptkit.bases import Base
from adaptkit.io.run_dir import load_run
from models import TinyCondGenerator, biggan_deep, biggan_inputs, tiny_cond_generator
from test_attach import perturb, snapshot
from test_cli_core import run

N, M = 4, 2  # tiny_cond_generator's classes, classes added
BIGGAN_CALL = CallSpec(latent=0, labels=1)


@pytest.fixture
def mixed():
    """Latents and a batch mixing old ids (< 4) and new ones (4, 5)."""
    g = torch.Generator().manual_seed(2)
    return torch.randn(8, 16, generator=g), torch.tensor([0, 4, 1, 5, 2, 3, 5, 4])


def base_view(y):
    """What the base sees for ``y`` under the default uniform init: new ids → class 0."""
    return torch.where(y >= N, 0, y)


def train(handle, model, z, y, steps=3):
    opt = torch.optim.Adam(handle.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        loss = model(z, y).square().mean() + handle.regularization()
        loss.backward()
        opt.step()


def test_old_classes_bitwise_before_during_after_training_and_after_load(tmp_path, cond_gen, mixed):
    z, y = mixed
    old = y < N
    base_out = cond_gen(z, base_view(y))
    base_old_only = cond_gen(z[old], y[old])
    base_state = snapshot(cond_gen)
    handle = attach_adapter(cond_gen, "kpcbn", num_new_classes=M)
    assert torch.equal(cond_gen(z, y)[old], base_out[old])
    assert torch.equal(cond_gen(z[old], y[old]), base_old_only)
    at_start = cond_gen(z, y)
    train(handle, cond_gen, z, y)
    during = cond_gen(z, y)
    assert torch.equal(during[old], base_out[old])
    assert not torch.allclose(during[~old], at_start[~old])  # the new classes did learn
    assert all(torch.equal(v, snapshot(cond_gen)[k]) for k, v in base_state.items())
    for bake in (True, False):
        save_adapter(handle, tmp_path / str(bake), bake=bake)
        fresh = tiny_cond_generator()
        load_adapter(fresh, tmp_path / str(bake))
        out = fresh(z, y)
        assert torch.equal(out[old], base_out[old])
        assert torch.allclose(out[~old], during[~old], atol=1e-5)
    handle.bake()
    assert torch.equal(cond_gen(z, y)[old], base_out[old])
    handle.detach()
    assert torch.equal(cond_gen(z, base_view(y)), base_out)


def test_new_ids_never_reach_the_base_tables(cond_gen, mixed):
    seen = []
    for m in cond_gen.modules():
        if isinstance(m, torch.nn.Embedding):
            m.register_forward_pre_hook(lambda mod, args: seen.append(int(args[0].max())))
    attach_adapter(cond_gen, "kpcbn", num_new_classes=M)
    out = cond_gen(*mixed)
    assert out.shape == (8, 3, 16, 16) and torch.isfinite(out).all()
    assert len(seen) == 8 and max(seen) < N


def test_uniform_start_is_the_average_old_class(cond_gen, mixed):
    z, y = mixed
    averaged = TinyCondGenerator(num_classes=N + 1)
    state = cond_gen.state_dict()
    for k, v in list(state.items()):
        if k.endswith(("gamma.weight", "beta.weight")):
            state[k] = torch.cat([v, v.mean(0, keepdim=True)])
    averaged.load_state_dict(state)
    averaged = averaged.eval()
    attach_adapter(cond_gen, "kpcbn", num_new_classes=M)
    new = y >= N
    expected = averaged(z[new], torch.full((int(new.sum()),), N))
    assert torch.allclose(cond_gen(z[new], y[new]), expected, atol=1e-6)


def test_init_from_old_classes_starts_as_them_exactly(cond_gen, mixed):
    z, _ = mixed
    base_out = cond_gen(z, torch.tensor([2, 3] * 4))
    attach_adapter(cond_gen, "kpcbn", num_new_classes=M, init=[2, 3])
    assert torch.equal(cond_gen(z, torch.tensor([4, 5] * 4)), base_out)


def test_regularization_is_the_l1_and_l2_terms(cond_gen):
    handle = attach_adapter(cond_gen, "kpcbn", num_new_classes=M, lambda_s=0.5, lambda_r=0.25)
    perturb(handle)
    props = [p for _, _, a in handle.layers() for p in a.propagation.values()]
    assert len(props) == 8  # γ and β of 4 conditional BNs
    l1 = sum(p.scores.abs().mean() for p in props)
    l2 = sum(p.residual.square().mean() for p in props)
    assert torch.allclose(handle.regularization(), 0.5 * l1 + 0.25 * l2)
    terms = handle.regularization_terms()  # logged separately by fit
    assert terms.keys() == {"similarity_l1", "residual_l2"}
    assert torch.allclose(terms["similarity_l1"], l1) and torch.allclose(terms["residual_l2"], l2)
    handle.regularization().backward()
    p = props[0]
    assert torch.allclose(p.scores.grad, 0.5 * p.scores.sign() / p.scores.numel())
    assert torch.allclose(p.residual.grad, 0.25 * 2 * p.residual / p.residual.numel())
    assert p.prior.grad is None


def test_bake_matches_and_holds_only_tables(tmp_path, cond_gen, mixed):
    handle = attach_adapter(cond_gen, "kpcbn", num_new_classes=M)
    perturb(handle)
    unbaked = cond_gen(*mixed)
    before = {k: v.clone() for k, v in handle.state_dict().items()}
    path = save_adapter(handle, tmp_path / "baked")
    assert handle.bakeable and all(torch.equal(v, handle.state_dict()[k]) for k, v in before.items())

    tensors = load_file(str(path / "adapter_model.safetensors"))
    assert sorted(tensors) == sorted(
        f"adapters.{layer}.tables.{t}" for layer in ("block1/bn1", "block1/bn2", "block2/bn1", "block2/bn2")
        for t in ("gamma", "beta")
    )
    assert all(t.shape == (M, 16) for t in tensors.values())
    config = json.loads((path / "adapter_config.json").read_text())["config"]
    assert config["baked"] is True and config["num_new_classes"] == M

    fresh = tiny_cond_generator()
    loaded = load_adapter(fresh, path)
    assert torch.allclose(fresh(*mixed), unbaked, atol=1e-5)
    assert not loaded.bakeable and loaded.regularization() == 0

    handle.bake()
    assert torch.allclose(cond_gen(*mixed), unbaked, atol=1e-5)
    assert handle.num_parameters() == 8 * M * 16 and handle.config.baked


def test_unbaked_checkpoint_resumes(tmp_path, cond_gen, mixed):
    handle = attach_adapter(cond_gen, "kpcbn", num_new_classes=M, lambda_r=0.1)
    train(handle, cond_gen, *mixed, steps=2)
    path = save_adapter(handle, tmp_path / "resume", bake=False)
    assert any(k.endswith("propagation.gamma.prior") for k in load_file(str(path / "adapter_model.safetensors")))
    fresh = tiny_cond_generator()
    loaded = load_adapter(fresh, path)
    assert not loaded.config.baked and loaded.config.lambda_r == 0.1
    assert all(torch.equal(v, handle.state_dict()[k]) for k, v in loaded.state_dict().items())
    assert torch.equal(fresh(*mixed), cond_gen(*mixed))
    train(loaded, fresh, *mixed, steps=1)


@pytest.fixture(scope="module")
def shared_biggan():
    return biggan_deep()


@pytest.fixture
def biggan(shared_biggan):
    """One BigGAN-deep for the module (building it is slow); adapters come off after each test."""
    yield shared_biggan
    for handle in list(attached_adapters(shared_biggan).values()):
        handle.detach()


@torch.no_grad()
def test_biggan_old_classes_bitwise_and_new_classes_from_the_class_embedding(biggan):
    n = biggan.config.num_classes
    z, y, trunc = biggan_inputs(biggan, batch=3)
    base_out = biggan(z, y, trunc)
    uniform = torch.full((2, n), 1.0 / n)
    anchored_out = biggan(z, torch.cat([y[:1], uniform]), trunc)

    handle = attach_adapter(biggan, "kpcbn", num_new_classes=M, call=BIGGAN_CALL)
    assert len(handle.targets) == 40 and "generator.bn" not in handle.targets
    assert torch.equal(biggan(z, y, trunc), base_out)  # a width-N class vector passes through
    mixed = F.one_hot(torch.tensor([0, n, n + 1]), n + M).float()
    assert torch.equal(biggan(z, mixed, trunc), anchored_out)  # new classes start as the average old class
    perturb(handle)
    out = biggan(z, mixed, trunc)
    assert torch.equal(out[0], anchored_out[0]) and not torch.allclose(out[1:], anchored_out[1:])
    handle.bake()
    assert torch.allclose(biggan(z, mixed, trunc), out, atol=1e-5)
    assert all(t.shape == (M, a.info.channels) for _, _, a in handle.layers() for t in a.tables.values())


def test_biggan_prior_is_the_class_part_of_the_spectral_norm_linears(biggan):
    bn = biggan.generator.layers[0].bn_0
    handle = attach_adapter(biggan, "kpcbn", num_new_classes=1, call=BIGGAN_CALL)
    prior = handle.adapter_for("generator.layers.0.bn_0").propagation["scale"].prior
    n, d = biggan.config.num_classes, biggan.config.z_dim
    with torch.no_grad():
        embed = biggan.embeddings(torch.eye(n))
        z = torch.zeros(n, d)
        expected = bn.scale(torch.cat([z, embed], 1)) - bn.scale(torch.cat([z, torch.zeros_like(embed)], 1))
    assert torch.allclose(prior, expected, atol=1e-5)


def test_bad_calls_and_options_are_clear_errors(cond_gen, mixed):
    z, _ = mixed
    with pytest.raises(AdaptkitError, match="init lists the old class"):
        attach_adapter(cond_gen, "kpcbn", num_new_classes=2, init=[1])
    with pytest.raises(AdaptkitError, match="init names old classes"):
        attach_adapter(cond_gen, "kpcbn", num_new_classes=1, init=[7])
    with pytest.raises(TargetSelectionError, match="not a conditional norm layer"):
        attach_adapter(cond_gen, "kpcbn", targets=["bn"])
    handle = attach_adapter(cond_gen, "kpcbn", num_new_classes=M)
    with pytest.raises(CallContextError, match=r"class ids \[6\] are out of range: 4 base classes \+ 2 new"):
        cond_gen(z[:2], torch.tensor([1, 6]))
    with pytest.raises(NotMergeableError):
        handle.merge()
    handle.detach()
    attach_adapter(cond_gen, "kpcbn", call=CallSpec(labels=None))
    with pytest.raises(CallContextError, match="needs the class labels"):
        cond_gen(z[:2], torch.tensor([1, 2]))



def test_biggan_errors(biggan):
    with pytest.raises(TargetSelectionError, match="no module 'shared'"):
        attach_adapter(biggan, "kpcbn", call=BIGGAN_CALL, class_embedding="shared")
    attach_adapter(biggan, "kpcbn", call=BIGGAN_CALL)
    z, _, trunc = biggan_inputs(biggan)
    with pytest.raises(CallContextError, match="has 13 columns; expected 10 \\(base classes\\) to 11"):
        biggan(z, torch.zeros(2, 13), trunc)
    with pytest.raises(CallContextError, match="takes a class vector"):
        biggan(z, torch.tensor([0, 1]), trunc)


def test_load_run_names_the_new_classes(tmp_path, cond_gen):
    handle = attach_adapter(cond_gen, "kpcbn", num_new_classes=M)
    save_adapter(handle, tmp_path / "run", metadata={"class_names": ["eight", "nine"]})
    base = Base("tests/tiny", tiny_cond_generator(), latent_dim=16, resolution=16, channels=3, num_classes=N)
    run = load_run(tmp_path / "run", base=base)
    assert run.base.num_classes == N + M and run.base.class_id("nine") == 5 and run.base.class_id(4) == 4
    assert run.base.class_names == ["0", "1", "2", "3", "eight", "nine"]
    assert base.num_classes == N and base.class_names is None  # the caller's Base is not changed
    out = run.base.generate(torch.zeros(1, 16), torch.tensor([run.base.class_id("eight")]))
    assert out.shape == (1, 3, 16, 16)


def test_adapters_without_a_baked_form_are_left_alone(cond_gen, cond_inputs):
    handle = attach_adapter(cond_gen, "bsa")
    perturb(handle)
    out = cond_gen(*cond_inputs)
    assert not handle.bakeable and handle.new_classes == 0
    handle.bake()
    assert torch.equal(cond_gen(*cond_inputs), out)


def test_inspect_lists_kpcbn_where_it_applies():
    result = run("inspect", "python:models:tiny_cond_generator")
    assert result.exit_code == 0 and "kpcbn: 4 target layers, 672 parameters" in result.output
    result = run("inspect", "python:models:tiny_generator")  # unconditional: kpcbn is skipped
    assert result.exit_code == 0 and "kpcbn: does not apply" in result.output and "bsa: 2 target" in result.output
    result = run("inspect", "python:models:tiny_generator", "-a", "kpcbn")  # asked for by name: an error
    assert result.exit_code == 1 and "error: the default targets matched no layer" in result.output


def test_biggan_base_samples_new_classes_by_name(tmp_path):
    from adaptkit import sample_images
    from adaptkit.bases.biggan import biggan_from_config
    from models import small_biggan_config

    base = biggan_from_config(small_biggan_config())
    old = sample_images(base, 2, class_id="goldfish", seed=1)
    handle = attach_adapter(base.generator, "kpcbn", num_new_classes=2, call=base.call)
    perturb(handle)
    wide = replace(base)
    wide.add_classes(2)
    new = sample_images(wide, 2, class_id=1001, seed=1)  # ids past the base's 1000: one-hot of width 1002
    save_adapter(handle, tmp_path / "run", metadata={"class_names": ["alley", "arch"]})
    handle.detach()

    run = load_run(tmp_path / "run", base=base)
    assert run.base.num_classes == 1002 and run.base.class_names[1] == "goldfish"
    assert torch.equal(sample_images(run.base, 2, class_id="goldfish", seed=1), old)
    assert torch.allclose(sample_images(run.base, 2, class_id="arch", seed=1), new, atol=1e-5)
