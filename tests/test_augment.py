"""DiffAugment for the adversarial objective: each transform does what the paper describes, is
differentiable, and the discriminator sees real and generated images through the same pipeline."""
import pytest
import torch
from torch import nn

from adaptkit.bases import Base
from adaptkit.errors import ConfigError
from adaptkit.train import AdversarialObjective, FitConfig
from adaptkit.train.augment import TRANSFORMS, Augmentation, color, cutout, parse_policy, translate
from models import tiny_cond_generator

pytestmark = pytest.mark.usefixtures("one_thread")


def ramp(b=2, c=3, h=8, w=8) -> torch.Tensor:
    return torch.arange(b * c * h * w, dtype=torch.float64).view(b, c, h, w) / (b * c * h * w)


@pytest.mark.parametrize("text, expected", [
    ("on", TRANSFORMS), ("off", ()), ("cutout,color", ("color", "cutout")), (" translation ", ("translation",)),
])
def test_policies(text, expected):
    assert parse_policy(text) == expected


@pytest.mark.parametrize("text", ["colour", "", "color,,cutout", "yes"])
def test_bad_policies(text):
    with pytest.raises(ConfigError, match="augment takes on, off or a comma-separated list"):
        parse_policy(text)


def test_translation_moves_each_image_and_fills_with_zeros():
    x = ramp()
    out = translate(x, torch.tensor([[1, -2], [0, 0]]))
    assert torch.equal(out[1], x[1])
    assert torch.equal(out[0, :, 1:, :-2], x[0, :, :-1, 2:])  # down 1, left 2
    assert out[0, :, 0].eq(0).all() and out[0, :, :, -2:].eq(0).all()


def test_cutout_zeroes_a_half_size_square_clipped_at_the_border():
    x = ramp() + 1
    out = cutout(x, torch.tensor([[4, 4], [0, 7]]))
    assert out[0].eq(0).sum() == 3 * 4 * 4 and out[0, :, 2:6, 2:6].eq(0).all()
    assert out[1].eq(0).sum() == 3 * 2 * 3 and out[1, :, :2, 5:].eq(0).all()  # rows -2…1, columns 5…8
    assert torch.equal(out[x.ne(out)], torch.zeros(int(x.ne(out).sum()), dtype=x.dtype))


def test_color_brightness_saturation_contrast():
    x = ramp()
    one, zero = torch.ones(2, dtype=x.dtype), torch.zeros(2, dtype=x.dtype)
    assert torch.allclose(color(x, torch.tensor([0.5, -0.25], dtype=x.dtype), one, one),
                          x + torch.tensor([0.5, -0.25], dtype=x.dtype).view(2, 1, 1, 1))
    gray = color(x, zero, zero, one)
    assert torch.allclose(gray, x.mean(1, keepdim=True).expand_as(x))
    flat = color(x, zero, one, zero)
    assert torch.allclose(flat, x.mean((1, 2, 3), keepdim=True).expand_as(x))


def test_draws_cover_the_papers_ranges_and_follow_the_generator():
    augment = Augmentation(TRANSFORMS)
    params = augment.draw(4000, (32, 16), torch.Generator().manual_seed(0))
    brightness, saturation, contrast = params["color"].unbind(1)
    assert -0.5 <= brightness.min() < -0.49 and 0.49 < brightness.max() <= 0.5
    assert 0 <= saturation.min() < 0.01 and 1.99 < saturation.max() <= 2
    assert 0.5 <= contrast.min() < 0.51 and 1.49 < contrast.max() <= 1.5
    assert set(params["translation"][:, 0].tolist()) == set(range(-4, 5))  # ±1/8 of 32
    assert set(params["translation"][:, 1].tolist()) == set(range(-2, 3))  # ±1/8 of 16
    assert params["cutout"][:, 0].max() == 31 and params["cutout"][:, 1].max() == 15 and params["cutout"].min() == 0
    again = augment.draw(4000, (32, 16), torch.Generator().manual_seed(0))
    assert all(torch.equal(params[k], again[k]) for k in params)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "on"])
def test_every_transform_is_differentiable(policy):
    augment = Augmentation(parse_policy(policy))
    x = ramp(c=3, h=8, w=8).requires_grad_(True)
    params = augment.draw(2, (8, 8), torch.Generator().manual_seed(3))
    assert torch.autograd.gradcheck(lambda t: augment(t, params), (x,))
    augment(x, params).sum().backward()
    assert x.grad.abs().sum() > 0


class RecordingD(nn.Module):
    """D(x, y) = w · mean(x), remembering every x it judged."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(1.0))
        self.seen: list[torch.Tensor] = []

    def forward(self, x, y):
        self.seen.append(x.detach().clone())
        return self.w * x.flatten(1).mean(1)


def test_discriminator_sees_real_and_generated_images_through_the_same_augmentation():
    base = Base("toy", tiny_cond_generator(), latent_dim=16, resolution=16, channels=3, num_classes=4,
                discriminator=RecordingD())
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    rng = torch.Generator().manual_seed(0)
    objective = AdversarialObjective(base, images, torch.zeros(4, dtype=torch.long),
                                     FitConfig(batch_size=4, augment="on"), None, rng)
    generated = nn.Parameter(torch.rand(4, 3, 16, 16))
    objective._fakes = lambda: (generated * 1, torch.zeros(4, dtype=torch.long))
    replay = torch.Generator().set_state(rng.get_state())
    index = torch.arange(4)

    objective.auxiliary_step(index)
    objective.loss(index)["g_hinge"].backward()
    real_seen, fake_seen, fake_seen_by_g = objective.discriminator.seen
    augment = objective.augment
    for seen, raw in ((real_seen, images), (fake_seen, generated), (fake_seen_by_g, generated)):
        assert torch.equal(seen, augment(raw.detach(), augment.draw(4, (16, 16), replay)))
        assert not torch.equal(seen, raw.detach())
    assert generated.grad is not None and generated.grad.abs().sum() > 0  # the generator's path is differentiable
