"""Metrics (KMMD, mean variance, FID, LPIPS diversity), feature extractors, image folders and
``adaptkit eval``, including sanity checks on MNIST that fail if a metric cannot tell sets apart."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from adaptkit import EvalReport, evaluate, frechet_distance, kmmd, mean_variance
from adaptkit.bases.data32 import MNIST_IMAGES, load_mnist
from adaptkit.cli import cli
from adaptkit.data import load_image_folder
from adaptkit.errors import DataError, EvaluationError, InvalidValueError, WeightsNotFoundError
from adaptkit.eval import (
    FeatureExtractor, PerceptualDistance, feature_map_distance, intra_cluster_diversity, kernel_distance, lpips_distance,
    memorization, pairwise_diversity,
)
from adaptkit.eval.features import load_embedded_extractor, load_feature_extractor, load_inception, resize_and_convert
from adaptkit.images import save_images
from adaptkit.io.image_folder import read_image_folder
from adaptkit.io.run_dir import is_run, load_run
from adaptkit.sample import generate_images, sample_learned_latents, sample_run
from adaptkit.train import FitConfig, fit
from clitools import one_line_error
from imagefolder import blob_images, write_images
from runs import TINY_COND, make_run


class RandomGlyphCNN(nn.Module):
    """Randomly initialized stand-in with the embedded extractor's interface (tests only: its
    numbers mean nothing)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.convs = nn.ModuleList([nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                                    nn.Conv2d(16, 32, 3, stride=2, padding=1)])

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for conv in self.convs:
            x = torch.relu(conv(x))
            maps.append(x)
        return maps

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_maps(x)[-1].mean((2, 3))


@pytest.fixture
def random_extractor() -> FeatureExtractor:
    return FeatureExtractor("random test CNN", RandomGlyphCNN(), resolution=32, channels=1)


@pytest.fixture(autouse=True)
def no_downloaded_weights(tmp_path_factory, monkeypatch):
    """An empty torch hub cache and no network: no test sees Inception or AlexNet weights of this machine."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))

    def no_network(url, dst, progress=True):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)


@pytest.fixture(scope="module")
def embedded() -> FeatureExtractor:
    return load_embedded_extractor()


# --- KMMD -------------------------------------------------------------------------------------

def test_kmmd_matches_a_hand_computation():
    real = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    generated = torch.tensor([[0.0, 1.0]])
    # squared distances: real-real [[0, 1], [1, 0]] → mean 0.5 → bandwidth 2·1²·0.5 = 1;
    # real-generated: 1 and 2; generated-generated: 0. Diagonal terms are included.
    k_rr = (1 + math.exp(-1)) / 2
    k_gg = 1.0
    k_rg = (math.exp(-1) + math.exp(-2)) / 2
    assert kmmd(generated, real) == pytest.approx(math.sqrt(k_rr + k_gg - 2 * k_rg), rel=1e-12)
    # σ = 2 quadruples the bandwidth
    k = lambda d: math.exp(-d / 4)  # noqa: E731
    expected = math.sqrt((2 + 2 * k(1)) / 4 + 1 - (k(1) + k(2)))
    assert kmmd(generated, real, sigma=2.0) == pytest.approx(expected, rel=1e-12)


def test_kmmd_of_sets_larger_than_one_block_equals_the_direct_formula():
    g = torch.Generator().manual_seed(0)
    real, generated = torch.randn(1100, 3, generator=g), torch.randn(1030, 3, generator=g) + 0.2
    d = lambda a, b: torch.cdist(a.double(), b.double()).square()  # noqa: E731
    scale = 2 * d(real, real).mean()
    k = lambda a, b: torch.exp(-d(a, b) / scale).mean()  # noqa: E731
    expected = math.sqrt(k(real, real) + k(generated, generated) - 2 * k(real, generated))
    assert kmmd(generated, real) == pytest.approx(expected, rel=1e-6)


def test_kmmd_is_zero_for_identical_sets_and_grows_with_a_shift():
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    assert kmmd(x, x) == 0.0
    assert 0 < kmmd(x + 0.5, x) < kmmd(x + 2.0, x)


def test_kmmd_rejects_bad_input():
    with pytest.raises(EvaluationError, match="distinct real"):
        kmmd(torch.randn(3, 4), torch.ones(5, 4))
    with pytest.raises(EvaluationError, match="one D"):
        kmmd(torch.randn(3, 4), torch.randn(5, 3))


# --- mean variance -----------------------------------------------------------------------------

def test_mean_variance_is_the_average_variance_ratio():
    real = torch.randn(200, 6, generator=torch.Generator().manual_seed(0))
    assert mean_variance(real * 0.5, real).value == pytest.approx(0.25)
    assert mean_variance(real, real).value == pytest.approx(1.0)
    collapsed = real[:1].repeat(100, 1) + 1e-3 * torch.randn(100, 6)
    assert mean_variance(collapsed, real).value < 1e-4


def test_mean_variance_skips_zero_variance_real_dims_and_says_so():
    real = torch.randn(100, 4, generator=torch.Generator().manual_seed(1))
    real[:, 2] = 3.0  # a dead feature
    generated = real * 2
    generated[:, 2] = torch.randn(100)
    result = mean_variance(generated, real)
    assert (result.value, result.dims_used, result.dims_total) == (pytest.approx(4.0), 3, 4)
    with pytest.raises(EvaluationError, match="do not vary"):
        mean_variance(generated, torch.ones(10, 4))


# --- FID ---------------------------------------------------------------------------------------

def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(m)
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T


def test_frechet_distance_matches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 5, generator=g, dtype=torch.float64)
    generated = torch.randn(200, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 5, generator=g,
                                                                                    dtype=torch.float64) + 1
    mu_r, mu_g = real.mean(0), generated.mean(0)
    cov_r, cov_g = torch.cov(real.T), torch.cov(generated.T)
    root = _sqrtm_psd(cov_r)
    expected = (mu_r - mu_g).square().sum() + cov_r.trace() + cov_g.trace() - 2 * _sqrtm_psd(root @ cov_g @ root).trace()
    assert frechet_distance(generated, real) == pytest.approx(float(expected), rel=1e-6)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_works_offline_without_torch_fidelity(monkeypatch):
    import torchmetrics.image.fid as tm_fid

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(tm_fid, "_TORCH_FIDELITY_AVAILABLE", False)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    x = torch.randn(20, 3)
    assert frechet_distance(x + 1, x) > 0


# --- features ----------------------------------------------------------------------------------

def test_resize_and_convert_channels_and_size():
    gray = torch.rand(2, 1, 28, 28) * 2 - 1
    rgb = resize_and_convert(gray, 40, 3)
    assert rgb.shape == (2, 3, 40, 40) and torch.equal(rgb[:, 0], rgb[:, 2])
    back = resize_and_convert(resize_and_convert(gray, 28, 3), 28, 1)
    assert torch.allclose(back, gray, atol=1e-6)  # the luma weights sum to 1
    with pytest.raises(EvaluationError, match="1 or 3"):
        resize_and_convert(torch.zeros(2, 4, 8, 8), 8, 1)


def test_inception_is_loaded_from_a_file_or_the_cache(tmp_path):
    from torchvision.models import inception_v3

    with pytest.raises(WeightsNotFoundError, match="Inception-v3 features needs inception_v3 weights: not in the "
                                                   "cache and the download failed .*inception_v3_google"):
        load_feature_extractor("inception")
    with pytest.raises(WeightsNotFoundError, match="missing.safetensors does not exist"):
        load_inception(tmp_path / "missing.safetensors")
    state = {k: v.contiguous() for k, v in inception_v3(weights=None, init_weights=False).state_dict().items()}
    save_file(dict(list(state.items())[:5]), str(tmp_path / "partial.safetensors"))
    with pytest.raises(WeightsNotFoundError, match="not torchvision Inception-v3 weights"):
        load_inception(tmp_path / "partial.safetensors")
    save_file(state, str(tmp_path / "inception.safetensors"))
    extractor, note = load_feature_extractor("auto", inception_weights=tmp_path / "inception.safetensors")
    assert note is None and extractor.name.startswith("inception-v3") and extractor.resolution == 299
    assert not extractor.has_feature_maps
    assert extractor.features(torch.zeros(1, 1, 32, 32)).shape == (1, 2048)


def test_auto_falls_back_to_the_embedded_extractor_and_says_why(embedded):
    extractor, note = load_feature_extractor("auto")
    assert extractor.name == embedded.name
    assert "Inception-v3 weights not found" in note


def test_the_embedded_extractor_follows_the_channels():
    rgb, note = load_feature_extractor("auto", channels=3)
    assert rgb.name.startswith("features_rgb32 (embedded") and rgb.channels == 3 and rgb.resolution == 32
    assert "Inception-v3 weights not found" in note and "used the embedded extractor features_rgb32" in note
    gray, note = load_feature_extractor("auto", channels=1)
    assert gray.name.startswith("features32 (embedded") and gray.channels == 1
    assert "used the embedded extractor features32" in note
    explicit, note = load_feature_extractor("embedded", channels=3)
    assert explicit.name == rgb.name and note is None
    with pytest.raises(EvaluationError, match="1 or 3 channels, not 4"):
        load_feature_extractor("embedded", channels=4)


def test_evaluate_compares_rgb_sets_with_the_rgb_network(one_thread):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 32, 32, generator=g) * 2 - 1
    rgb = evaluate(images[:4], images[4:], max_lpips_images=4)
    assert rgb.extractor.startswith("features_rgb32") and "features_rgb32" in rgb.lpips_distance
    assert any("used the embedded extractor features_rgb32" in note for note in rgb.notes)
    mixed = evaluate(images[:4, :1], images[4:], max_lpips_images=4)
    assert mixed.extractor == rgb.extractor
    gray = evaluate(images[:4, :1], images[4:, :1], max_lpips_images=4)
    assert gray.extractor.startswith("features32") and "features32" in gray.lpips_distance


# --- LPIPS diversity ---------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")
def test_lpips_distance_equals_the_lpips_package():
    import lpips

    torch.manual_seed(0)
    net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()  # random backbone, shipped linear weights
    a, b = torch.rand(3, 3, 64, 64) * 2 - 1, torch.rand(3, 3, 64, 64) * 2 - 1
    ours = lpips_distance(net)
    assert torch.allclose(ours(a, b).float(), net(a, b).flatten(), rtol=1e-4, atol=1e-6)
    assert ours.name == "lpips alex v0.1"


def test_feature_map_diversity(random_extractor):
    distance = feature_map_distance(random_extractor)
    g = torch.Generator().manual_seed(0)
    varied = torch.rand(12, 1, 32, 32, generator=g) * 2 - 1
    same = varied[:1].repeat(12, 1, 1, 1)
    assert pairwise_diversity(same, distance)[0] == pytest.approx(0.0, abs=1e-9)
    value, used = pairwise_diversity(varied, distance)
    i, j = torch.combinations(torch.arange(12), 2).T
    assert used == 12 and value == pytest.approx(float(distance(varied[i], varied[j]).mean()), rel=1e-5)
    assert pairwise_diversity(varied, distance, max_images=5)[1] == 5
    with pytest.raises(EvaluationError, match="no feature_maps"):
        feature_map_distance(FeatureExtractor("no maps", nn.Identity(), 32, 1))


# --- evaluate and its report --------------------------------------------------------------------

def test_evaluate_reports_every_metric_and_how(random_extractor, tmp_path):
    g = torch.Generator().manual_seed(0)
    real = torch.rand(20, 1, 28, 28, generator=g) * 2 - 1
    generated = torch.rand(16, 3, 40, 40, generator=g) * 2.2 - 1.1  # other size, RGB, some values outside [-1, 1]
    report = evaluate(generated, real, extractor=random_extractor)
    assert (report.n_generated, report.n_real, report.feature_dim) == (16, 20, 32)
    assert report.extractor == "random test CNN" and "feature maps" in report.lpips_distance
    assert report.kmmd > 0 and report.fid > 0 and report.lpips_diversity > 0 and report.lpips_images == 16
    assert any("clipped" in note for note in report.notes)
    data = json.loads(report.to_json(tmp_path / "r.json"))
    assert data == json.loads((tmp_path / "r.json").read_text()) == report.to_dict()
    assert EvalReport(**data) == report
    with pytest.raises(EvaluationError, match="at least two generated"):
        evaluate(generated[:1], real, extractor=random_extractor)
    with pytest.raises(EvaluationError, match="unknown feature extractor"):
        evaluate(generated, real, extractor="vgg")


def test_few_images_give_a_warning(random_extractor):
    from adaptkit.eval.report import MIN_RELIABLE_IMAGES

    g = torch.Generator().manual_seed(0)
    few = evaluate(torch.rand(10, 1, 32, 32, generator=g), torch.rand(12, 1, 32, 32, generator=g),
                   extractor=random_extractor)
    assert [n for n in few.notes if n.startswith("warning: only 10 generated and 12 real images")]
    n = MIN_RELIABLE_IMAGES
    enough = evaluate(torch.rand(n, 1, 32, 32, generator=g), torch.rand(n, 1, 32, 32, generator=g),
                      extractor=random_extractor)
    assert not [note for note in enough.notes if note.startswith("warning")]


def test_collapse_is_reported_even_when_mean_variance_looks_healthy(random_extractor, monkeypatch):
    import adaptkit.eval.report as report_module
    from adaptkit.eval import MeanVariance

    monkeypatch.setattr(report_module, "mean_variance", lambda gen, real: MeanVariance(0.914, 32, 32))
    g = torch.Generator().manual_seed(0)
    real = torch.rand(60, 1, 32, 32, generator=g) * 2 - 1
    blank = torch.ones(60, 1, 32, 32)      # every sample the same all-white image
    report = evaluate(blank, real, extractor=random_extractor)
    (warning,) = [n for n in report.notes if "collapse" in n]
    assert warning.startswith("warning: collapse: LPIPS diversity of the generated images is 0.0000")
    assert "although mean variance is 0.914" in warning


def test_eval_help_says_a_run_is_sampled_in_its_training_classes():
    from adaptkit.eval.report import MIN_RELIABLE_IMAGES

    text = " ".join(CliRunner().invoke(cli, ["eval", "--help"]).output.split())
    assert "random classes" not in text
    assert "Default: run folder: the classes of the run's training images, in their proportions" in text
    assert f"Fewer than {MIN_RELIABLE_IMAGES} images" in text


# --- sanity on real data -----------------------------------------------------------------------

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist-test"


@pytest.fixture(scope="module")
def digits():
    if not (MNIST_DIR / MNIST_IMAGES).is_file():
        pytest.skip(f"the MNIST test set is not in {MNIST_DIR} (the shared data folder beside the repository)")
    g = torch.Generator().manual_seed(0)
    threes, sevens = (load_mnist(MNIST_DIR, digits=[d]).images for d in (3, 7))
    threes = threes[torch.randperm(len(threes), generator=g)[:200]]
    return {"3a": threes[:100], "3b": threes[100:], "7": sevens[torch.randperm(len(sevens), generator=g)[:100]],
            "noise": torch.rand(100, 1, 32, 32, generator=g) * 2 - 1}


def test_metrics_tell_a_disjoint_split_from_noise_and_another_class(digits, embedded):
    feats = {k: embedded.features(v) for k, v in digits.items()}
    real = feats["3a"]
    assert kmmd(real, real) == 0.0 and frechet_distance(real, real) == pytest.approx(0, abs=1e-6)
    split_k, split_f = kmmd(feats["3b"], real), frechet_distance(feats["3b"], real)
    for other in ("7", "noise"):
        assert kmmd(feats[other], real) > 4 * split_k, other
        assert frechet_distance(feats[other], real) > 10 * split_f, other
    assert 0.5 < mean_variance(feats["3b"], real).value < 2
    one_three = digits["3b"][:1].repeat(50, 1, 1, 1) + 0.02 * torch.randn(50, 1, 32, 32)
    assert mean_variance(embedded.features(one_three), real).value < 0.1  # collapse


def test_lpips_diversity_drops_for_a_memorized_handful(digits, embedded):
    distance = feature_map_distance(embedded)
    varied = pairwise_diversity(digits["3b"][:40], distance)[0]
    handful = pairwise_diversity(digits["3b"][:4].repeat(10, 1, 1, 1), distance)[0]
    assert handful < 0.85 * varied  # 1/4 of the pairs are identical images


# --- image folders and the CLI ------------------------------------------------------------------

def test_read_image_folder(tmp_path):
    g = torch.Generator().manual_seed(0)
    save_images(torch.rand(3, 1, 8, 8, generator=g) * 2 - 1, tmp_path / "a" / "nested")
    Image.fromarray(np.full((6, 10), 255, np.uint8)).save(tmp_path / "a" / "odd.jpg")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    images = read_image_folder(tmp_path / "a")
    assert images.shape == (4, 1, 8, 8) and images.min() >= -1 and images.max() <= 1
    assert read_image_folder(tmp_path / "a", limit=2).shape[0] == 2
    save_images(torch.rand(2, 3, 8, 8, generator=g) * 2 - 1, tmp_path / "rgb")
    assert read_image_folder(tmp_path / "rgb").shape == (2, 3, 8, 8)
    with pytest.raises(DataError, match="does not exist"):
        read_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        read_image_folder(tmp_path / "empty")
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        read_image_folder(tmp_path / "a")


def test_read_image_folder_scales_16_bit_pngs(tmp_path):
    Image.new("I;16", (4, 4), 32768).save(tmp_path / "grey16.png")  # mid-grey of 0–65535
    Image.new("I;16", (4, 4), 65535).save(tmp_path / "white16.png")
    images = read_image_folder(tmp_path)
    assert images.shape == (2, 1, 4, 4)
    assert images[0].abs().max() < 0.01 and images[1].eq(1).all()


def test_eval_reads_the_pixels_training_reads(tmp_path):
    Image.new("RGBA", (6, 6), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    stored = np.zeros((6, 12, 3), np.uint8)
    stored[:, :4] = (255, 0, 0)
    stored[:, 4:8] = (0, 255, 0)
    stored[:, 8:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF orientation: shown rotated by 90°, 6 wide and 12 tall
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif, quality=100)
    trained = load_image_folder(tmp_path, channels=3, resolution=6).images
    evaluated = read_image_folder(tmp_path)
    assert evaluated.shape == (2, 3, 6, 6) and torch.equal(evaluated, trained)
    assert evaluated[0].eq(1).all()  # transparency composited onto white, as for training
    bands = evaluated[1]  # the upright image: the stored columns of colour are rows now
    assert bands.std(dim=2).max() < 0.01 and bands.std(dim=1).min() > 0.3


def test_cli_eval_image_folders(tmp_path, embedded):
    g = torch.Generator().manual_seed(0)
    save_images(torch.rand(10, 1, 32, 32, generator=g) * 2 - 1, tmp_path / "gen")
    save_images(torch.rand(12, 1, 32, 32, generator=g) * 2 - 1, tmp_path / "real")
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "gen"), "--real", str(tmp_path / "real"),
                                      "--json", str(tmp_path / "out" / "report.json")])
    assert result.exit_code == 0, result.output
    for text in ("KMMD", "mean variance", "FID", "LPIPS diversity", embedded.name, "Inception-v3 weights not found"):
        assert text in result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (report["n_generated"], report["n_real"], report["extractor"]) == (10, 12, embedded.name)


def test_cli_eval_run_folder(tmp_path, embedded):
    run = make_run(tmp_path / "run", seed=1, labels=[2, 2, 3])
    save_images(torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1, tmp_path / "real")
    result = CliRunner().invoke(cli, ["eval", str(run), "--real", str(tmp_path / "real"), "-n", "12",
                                      "--device", "cpu", "--json", str(tmp_path / "report.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["n_generated"], report["n_real"]) == (12, 8)


def test_cli_eval_samples_an_update_all_run(tmp_path, embedded):
    write_images(tmp_path / "real", blob_images(6))
    run = fit(FitConfig(data=str(tmp_path / "real"), out=str(tmp_path / "run"), base=TINY_COND, class_id="1",
                        adapter="none", unfreeze=["all"], perceptual="none", steps=2, samples=4, quiet=True))
    assert is_run(run) and not (run / "adapter_config.json").exists()
    result = CliRunner().invoke(cli, ["eval", str(run), "--real", str(tmp_path / "real"), "-n", "7",
                                      "--device", "cpu", "--json", str(tmp_path / "report.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["n_generated"], report["n_real"]) == (7, 6)  # sampled, not the run's PNGs (loss.png…)


def test_cli_eval_json_never_overwrites_the_runs_own_files(tmp_path):
    run = make_run(tmp_path / "run", seed=1)
    save_images(torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1, tmp_path / "real")
    config = (run / "adapter_config.json").read_bytes()
    result = CliRunner().invoke(cli, ["eval", str(run), "--real", str(tmp_path / "real"), "-n", "4",
                                      "--device", "cpu", "--json", str(run / "adapter_config.json")])
    one_line_error(result, "--json")
    assert "would overwrite adapter_config.json of run " in result.stderr
    assert (run / "adapter_config.json").read_bytes() == config


def test_samples_from_a_run_follow_its_training_classes(tmp_path):
    run = load_run(make_run(tmp_path / "run", seed=1, labels=[2, 2, 3]))
    a = sample_run(run, 6, seed=5)
    # batches of 4 + 2 give the same samples (up to kernel rounding, which varies with the thread count)
    assert a.shape == (6, 3, 16, 16) and torch.allclose(a, sample_run(run, 6, seed=5, batch_size=4), atol=1e-6)
    z = run.base.sample_latents(6, 0.4, generator=torch.Generator().manual_seed(5))
    by_class = {c: generate_images(run.base, z, torch.full((6,), c)) for c in range(4)}
    assert all(any(torch.allclose(a[i], by_class[c][i], atol=1e-6) for c in (2, 3)) for i in range(6))
    assert not any(torch.allclose(a[i], by_class[0][i], atol=1e-6) for i in range(6))
    assert torch.allclose(sample_run(run, 6, seed=5, class_id=0), by_class[0], atol=1e-6)


def test_learned_latents_follow_the_fitted_gaussian():
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(8, 20, generator=g) * 3 + 5  # far from N(0, I)
    z = sample_learned_latents(latents, 4000, torch.Generator().manual_seed(1))
    assert z.shape == (4000, 20)
    assert torch.allclose(z.mean(0), latents.mean(0), atol=0.3)
    assert torch.allclose(torch.cov(z.T), torch.cov(latents.T), atol=1.5)
    # rank N - 1: every sample lies in the span of the centred latents, around their mean
    basis = torch.linalg.svd(latents - latents.mean(0), full_matrices=False).Vh[:7]
    residual = (z - latents.mean(0)) - (z - latents.mean(0)) @ basis.T @ basis
    assert residual.abs().max() < 1e-3
    with pytest.raises(InvalidValueError, match="at least 2"):
        sample_learned_latents(latents[:1], 3)


def test_run_samples_from_learned_latents(tmp_path):
    run = load_run(make_run(tmp_path / "run", seed=1, labels=[2, 2, 3]))
    a = sample_run(run, 6, seed=5, latents="learned")
    z = sample_learned_latents(run.latents, 6, torch.Generator().manual_seed(5))
    by_class = {c: generate_images(run.base, z, torch.full((6,), c)) for c in (2, 3)}
    assert all(any(torch.allclose(a[i], by_class[c][i], atol=1e-6) for c in (2, 3)) for i in range(6))
    assert not torch.allclose(a, sample_run(run, 6, seed=5), atol=1e-3)
    with pytest.raises(InvalidValueError, match="unknown latent source"):
        sample_run(run, 6, latents="uniform")


def test_cli_eval_samples_a_run_from_its_learned_latents(tmp_path, embedded):
    run = make_run(tmp_path / "run", seed=1, labels=[2, 2, 3])
    save_images(torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1, tmp_path / "real")
    reports = {}
    for source in ("normal", "learned"):
        out = tmp_path / f"{source}.json"
        result = CliRunner().invoke(cli, ["eval", str(run), "--real", str(tmp_path / "real"), "-n", "12",
                                          "--device", "cpu", "--latents", source, "--json", str(out)])
        assert result.exit_code == 0, result.output
        reports[source] = json.loads(out.read_text())
    assert reports["normal"]["kmmd"] != reports["learned"]["kmmd"]


def test_cli_eval_errors_are_one_line(tmp_path):
    (tmp_path / "real").mkdir()
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "nope"), "--real", str(tmp_path / "real")])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "no images" in result.output
    save_images(torch.zeros(2, 1, 8, 8), tmp_path / "real")
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "nope"), "--real", str(tmp_path / "real")])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "image folder" in result.output and "nope does not exist" in result.output
    run = make_run(tmp_path / "run", seed=0, base_id=None)
    result = CliRunner().invoke(cli, ["eval", str(run), "--real", str(tmp_path / "real")])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0
    assert "does not record its base" in result.output


# --- KID, intra-cluster LPIPS, memorization ----------------------------------------------------

def _unbiased_poly_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    def k(a, b):
        return (a @ b.T / a.shape[1] + 1) ** 3
    m = len(x)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    within = (kxx.sum() - kxx.diag().sum() + kyy.sum() - kyy.diag().sum()) / (m * (m - 1))
    return float(within - 2 * kxy.mean())


def test_kid_is_the_unbiased_polynomial_mmd_and_leaves_the_global_rng_alone():
    g = torch.Generator().manual_seed(0)
    real, generated = torch.randn(8, 5, generator=g, dtype=torch.float64), torch.randn(8, 5, generator=g) + 0.5
    state = torch.get_rng_state()
    kid = kernel_distance(generated, real, subsets=7)
    assert torch.equal(torch.get_rng_state(), state)
    # subsets of all 8 rows are permutations of the sets: every subset gives the full-set value
    assert (kid.subset_size, kid.subsets) == (8, 7) and kid.std == pytest.approx(0, abs=1e-9)
    assert kid.value == pytest.approx(_unbiased_poly_mmd2(real, generated.double()), rel=1e-9)
    many = torch.randn(300, 5, generator=g)
    assert kernel_distance(generated, many, seed=3).subset_size == 8
    assert kernel_distance(generated, many, seed=3) == kernel_distance(generated, many, seed=3)
    # unbiased: two draws of one distribution average ≈ 0 (a V-statistic would stay clearly positive)
    same = kernel_distance(torch.randn(300, 5, generator=g), many).value
    shifted = kernel_distance(torch.randn(300, 5, generator=g) + 0.5, many).value
    assert abs(same) < 0.02 * shifted


def _unit_rows(*rows):
    return torch.tensor(rows, dtype=torch.float32)[:, :, None, None]


def test_intra_cluster_lpips_averages_the_pairs_within_each_training_images_cluster():
    distance = PerceptualDistance("rows", lambda x: [x])  # embeddings: the rows, unit-normalized
    train = _unit_rows([1, 0], [0, 1])
    generated = _unit_rows([1, 0.1], [1, -0.1], [0.1, 1], [0, 1], [-0.1, 1], [1, 0.2])
    e = torch.nn.functional.normalize(generated.flatten(1), dim=1).double()
    a, b = e[[0, 1, 5]], e[[2, 3, 4]]

    def mean_pairs(x):
        return float(torch.cdist(x, x).square().sum() / (len(x) * (len(x) - 1)))

    value, clusters = intra_cluster_diversity(generated, train, distance)
    assert clusters == 2 and value == pytest.approx((mean_pairs(a) + mean_pairs(b)) / 2, rel=1e-6)
    # one sample per training image: no cluster has a pair, so the value is not defined
    value, clusters = intra_cluster_diversity(generated[[0, 2]], train, distance)
    assert math.isnan(value) and clusters == 0


def test_memorization_matches_a_hand_computation():
    train = torch.tensor([[0.0], [1.0], [3.0], [6.0]])  # leave-one-out NN distances 1, 1, 2, 3 → median 1.5
    generated = torch.tensor([[0.05], [2.0], [6.0], [4.5]])  # nearest distances 0.05, 1, 0, 1.5 → median 0.525
    score, nearest = memorization(generated, train)
    assert nearest.index.tolist() == [0, 1, 3, 2] and torch.allclose(nearest.distance.float(), torch.tensor([0.05, 1, 0, 1.5]))
    assert score.ratio == pytest.approx(0.525 / 1.5) and score.n_train == 4
    assert score.threshold == pytest.approx(1.0) and score.copies == pytest.approx(0.5)  # 10% quantile of 1, 1, 2, 3
    with pytest.raises(EvaluationError, match="duplicates"):
        memorization(generated, torch.zeros(4, 1))


def test_memorization_separates_copies_of_the_training_images_from_new_images(digits, embedded):
    train, fresh = digits["3a"][:25], digits["3b"]
    copies = torch.cat([train.roll(shift, dim) for shift in (-1, 1) for dim in (2, 3)])  # moved by one pixel
    healthy = memorization(embedded.features(fresh), embedded.features(train))[0]
    exact = memorization(embedded.features(train), embedded.features(train))[0]
    jittered = memorization(embedded.features(copies), embedded.features(train))[0]
    assert healthy.ratio > 0.7 and healthy.copies < 0.3
    assert exact.ratio < 1e-5 and exact.copies == 1
    assert jittered.ratio < 0.6 * healthy.ratio and jittered.copies > 0.8


def test_cli_eval_reports_kid_intra_lpips_and_memorization_and_draws_nearest(tmp_path, embedded):
    images = blob_images(30)
    write_images(tmp_path / "train", images[:10])
    write_images(tmp_path / "real", images[10:])
    write_images(tmp_path / "gen", images[:10].repeat(2, 1, 1, 1))  # copies of the training images
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "gen"), "--real", str(tmp_path / "real"), "--train",
                                      str(tmp_path / "train"), "--nearest", str(tmp_path / "near.png"),
                                      "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    for text in ("KID", "intra-cluster LPIPS", "memorization ratio", "near-copies"):
        assert text in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n_train"] == 10 and report["memorization_ratio"] < 1e-5 and report["near_copies"] == 1
    assert report["kid_subset_size"] == 20 and report["intra_lpips"] < 1e-9 and report["intra_lpips_clusters"] == 10
    pairs = np.asarray(Image.open(tmp_path / "near.png"))
    # one generated image per training image: the other metrics are reported, intra-cluster LPIPS is not defined
    write_images(tmp_path / "one_each", images[:10])
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "one_each"), "--real", str(tmp_path / "real"), "--train",
                                      str(tmp_path / "train"), "--json", str(tmp_path / "one.json")])
    assert result.exit_code == 0, result.output
    assert "intra-cluster LPIPS is not defined here" in " ".join(result.output.split())
    one = json.loads((tmp_path / "one.json").read_text())
    assert math.isnan(one["intra_lpips"]) and one["intra_lpips_clusters"] == 0 and one["memorization_ratio"] < 1e-5
    assert pairs.shape[:2] == (4 * 18 + 2, 8 * 18 + 2)  # 16 samples, each beside its training image
    assert np.array_equal(pairs[2:18, 2:18], pairs[2:18, 20:36])  # an exact copy beside its original
    run = make_run(tmp_path / "run", seed=1)
    result = CliRunner().invoke(cli, ["eval", str(run), "--real", str(tmp_path / "real"), "-n", "4",
                                      "--nearest", str(run / "samples.png")])
    one_line_error(result, "--nearest")
