"""Sharing adapters on the Hub: the real huggingface_hub client against the small server in hub_server.py."""
import itertools
import json
import os
import shutil
import socket
import threading
import time

import pytest
import torch
from huggingface_hub import ModelCard, constants, hf_hub_download
from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
from PIL import Image
from safetensors.torch import save_file

from adaptkit import (
    BaseMismatchError,
    CheckpointError,
    HubConnectionError,
    HubError,
    HubNotFoundError,
    UnsafeRepoError,
    attach_adapter,
    load_adapter,
    pull_adapter,
    push_adapter,
    save_adapter,
)
from adaptkit.bases import load_base
from adaptkit.io.card import format_size, is_generated_card
from adaptkit.io.folder_lock import folder_lock
from clitools import invoke, one_line_error
from hub_server import FakeHub
from models import tiny_cond_generator
from runs import make_run

TOKENS = {"alice-write": ("alice", True), "alice-read": ("alice", False), "bob-write": ("bob", True)}
ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", "latents.safetensors", "samples.png", "loss.png"}
PUSHED = ADAPTER_FILES | {"README.md", "config.json"}  # the card and the download counter beside them
COMMAND = "adaptkit fit --adapter bsa --data ../shared/data/faces --out runs/faces"
_names = itertools.count()


@pytest.fixture(scope="module")
def hub():
    server = FakeHub(TOKENS).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def hub_env(hub, tmp_path, monkeypatch):
    """Point the client at the test server, with a fresh cache and no login of the machine's."""
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", "alice-write")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-token"))
    hub.fail.clear()
    hub.fail_next.clear()
    hub.mode = None
    yield
    hub.fail.clear()
    hub.fail_next.clear()
    hub.mode = None


@pytest.fixture
def repo_id():
    return f"alice/adapter-{next(_names)}"


def fresh_cache(tmp_path, monkeypatch, name="second-cache"):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / name))


def make_hub_run(folder, cond_inputs, seed=0, metadata=None):
    """A fit-like run folder (``runs.make_run``) plus files that must never be uploaded; returns the
    adapted generator's output on ``cond_inputs``."""
    make_run(folder, seed, count=4, base_id="tests/tiny", train_conditional=True,
             metadata=metadata or {"training": {"command": COMMAND, "steps": 10, "lr": 0.01}})
    for name in ("samples.png", "loss.png"):
        Image.new("RGB", (8, 8), (seed * 40, 90, 200)).save(folder / name)
    (folder / "log.csv").write_text("step,loss\n1,0.5\n")
    (folder / "summary.json").write_text("{}")
    (folder / "checkpoints").mkdir(exist_ok=True)
    save_file({"opt": torch.zeros(3)}, str(folder / "checkpoints" / "state.safetensors"))
    save_file({"w": torch.zeros(3)}, str(folder / "G_base.safetensors"))
    model = tiny_cond_generator()
    load_adapter(model, folder)
    with torch.no_grad():
        return model(*cond_inputs)


@pytest.fixture(scope="module")
def made_runs(tmp_path_factory):
    """Two fit-like runs (made once: saving an adapter takes a while), with their outputs."""
    g = torch.Generator().manual_seed(1)
    inputs = torch.randn(6, 16, generator=g), torch.tensor([0, 1, 2, 3, 0, 1])
    folders = [tmp_path_factory.mktemp("runs") / f"v{seed}" for seed in (1, 2)]
    return inputs, [(folder, make_hub_run(folder, inputs, seed=seed)) for seed, folder in zip((1, 2), folders)]


@pytest.fixture
def cond_inputs(made_runs):
    return made_runs[0]


@pytest.fixture
def runs(made_runs, tmp_path):
    """Fresh copies of the two runs."""
    copies = []
    for folder, out in made_runs[1]:
        shutil.copytree(folder, tmp_path / folder.name)
        copies.append((tmp_path / folder.name, out))
    return copies


@pytest.fixture
def run(runs):
    return runs[0]


def folder_state(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- round trips ------------------------------------------------------------------------------------


def test_push_uploads_only_adapter_files(hub, run, repo_id):
    folder, _ = run
    result = invoke("push", folder, repo_id)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == f"{hub.url}/{repo_id}"
    files = hub.files(repo_id)
    assert set(files) == PUSHED | {".gitattributes"}
    assert all(files[n] == (folder / n).read_bytes() for n in ADAPTER_FILES)
    assert (folder / "README.md").read_text() == files["README.md"].decode()  # the card is kept beside


def test_round_trip_cli_and_library_is_exact(hub, run, repo_id, tmp_path, monkeypatch, cond_inputs):
    folder, expected = run
    assert invoke("push", folder, repo_id).exit_code == 0
    fresh_cache(tmp_path, monkeypatch)
    result = invoke("pull", repo_id, "--out", tmp_path / "pulled")
    assert result.exit_code == 0, result.output
    assert "bsa adapter" in result.stdout and "for tests/tiny" in result.stdout
    pulled = tmp_path / "pulled"
    assert {p.name for p in pulled.iterdir()} == PUSHED
    model = tiny_cond_generator()
    load_adapter(model, pulled)
    assert torch.equal(model(*cond_inputs), expected)

    fresh_cache(tmp_path, monkeypatch, "third-cache")
    model = tiny_cond_generator()
    handle = load_adapter(model, repo_id)
    assert torch.equal(model(*cond_inputs), expected)
    assert handle.metadata["training"]["command"] == COMMAND


def test_push_library_result_and_noop_repush(hub, run, repo_id):
    folder, _ = run
    first = push_adapter(folder, repo_id)
    assert first.card == "generated" and first.url == f"{hub.url}/{repo_id}"
    assert set(first.uploaded) == PUSHED
    again = push_adapter(folder, repo_id)
    assert again.commit == first.commit  # nothing changed: no new commit


def test_repeated_push_says_nothing_changed(hub, run, repo_id):
    folder, _ = run
    assert invoke("push", folder, repo_id).exit_code == 0
    head = hub.repos[repo_id].branches["main"]
    result = invoke("push", folder, repo_id)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"nothing changed: {repo_id} already holds these files (commit {head[:10]})")
    assert "uploaded" not in result.stdout and hub.repos[repo_id].branches["main"] == head
    Image.new("RGB", (8, 8), (1, 2, 3)).save(folder / "samples.png")
    result = invoke("push", folder, repo_id)
    assert result.stdout.startswith("uploaded samples.png (6 unchanged) in commit"), result.stdout
    assert "model card" not in result.stdout  # the card did not change


def test_push_replaces_an_earlier_runs_files(hub, runs, repo_id):
    (v1, _), (v2, _) = runs
    for name in ("samples_0.png", "interpolation_random_0.png"):  # what `adaptkit sample`/`interpolate` add
        (v1 / name).write_bytes((v1 / "loss.png").read_bytes())
    push_adapter(v1, repo_id)
    hub.seed(repo_id, {**hub.files(repo_id), "notes/old.txt": b"from an earlier run"})
    result = invoke("push", v2, repo_id)
    assert result.exit_code == 0, result.output
    assert set(hub.files(repo_id)) == PUSHED | {".gitattributes"}
    assert "removed from the repo (not in" in result.stdout
    assert "interpolation_random_0.png, notes/old.txt, samples_0.png" in result.stdout
    assert all(hub.files(repo_id)[n] == (v2 / n).read_bytes() for n in ADAPTER_FILES)


def test_repush_removes_run_files_the_folder_lost(hub, run, repo_id):
    folder, _ = run
    push_adapter(folder, repo_id)
    (folder / "latents.safetensors").unlink()
    result = push_adapter(folder, repo_id)
    assert result.deleted == ["latents.safetensors"]
    assert "latents.safetensors" not in hub.files(repo_id)


def test_private_repo_needs_the_owners_token(hub, run, repo_id, monkeypatch):
    folder, _ = run
    assert invoke("push", folder, repo_id, "--private").exit_code == 0
    assert hub.repos[repo_id].private
    monkeypatch.delenv("HF_TOKEN")
    one_line_error(invoke("pull", repo_id), f"repo {repo_id} not found on {hub.url} (check the name; if it is private, log in")
    monkeypatch.setenv("HF_TOKEN", "bob-write")
    one_line_error(invoke("pull", repo_id), "a private repo is only visible to tokens with access")


def test_token_from_the_login_cache(hub, run, repo_id, monkeypatch):
    folder, _ = run
    monkeypatch.delenv("HF_TOKEN")
    with open(constants.HF_TOKEN_PATH, "w") as f:
        f.write("alice-write")
    assert invoke("push", folder, repo_id).exit_code == 0


# --- revisions ---------------------------------------------------------------------------------------


def test_revisions(hub, runs, repo_id, cond_inputs):
    (v1, out1), (v2, out2) = runs
    first = push_adapter(v1, repo_id)
    result = invoke("push", v2, repo_id, "--revision", "dev", "-m", "second try")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == f"{hub.url}/{repo_id}/tree/dev"
    assert 'revision="dev"' in hub.files(repo_id, "dev")["README.md"].decode()
    for revision, expected in ((None, out1), ("dev", out2), (first.commit, out1)):
        model = tiny_cond_generator()
        load_adapter(model, repo_id, revision=revision)
        assert torch.equal(model(*cond_inputs), expected)
    one_line_error(invoke("pull", repo_id, "--revision", "nope"), f"revision 'nope' not found in {repo_id}")
    with pytest.raises(CheckpointError, match="revision= is for Hub repo ids"):
        load_adapter(tiny_cond_generator(), v1, revision="dev")


# --- model card --------------------------------------------------------------------------------------


def test_card_metadata_and_body(hub, run, repo_id):
    folder, _ = run
    push_adapter(folder, repo_id, license="mit")
    text = hub.files(repo_id)["README.md"].decode()
    card = ModelCard(text)
    assert card.data.library_name == "adaptkit" and card.data.license == "mit"
    assert card.data.base_model == "tests/tiny" and card.data.base_model_relation == "adapter"
    assert card.data.tags == ["adaptkit", "bsa", "few-shot-image-generation", "base_model:adapter:tests/tiny"]
    assert card.data.pipeline_tag == "text-to-image"  # a class-conditional base
    assert card.data.license_name is None and card.data.datasets is None and card.data.eval_results is None
    model = tiny_cond_generator()
    params = attach_adapter(model, "bsa", train_conditional=True).num_parameters()
    size = format_size((folder / "adapter_model.safetensors").stat().st_size)
    for expected in ("![samples](samples.png)", COMMAND, f"| adapter parameters | {params:,} |", "| steps | `10` |",
                     f"{params:,} parameters in a {size} file", "![loss](loss.png)",
                     f'adaptkit.load_adapter(generator, "{repo_id}")  # refuses any other base'):
        assert expected in card.text
    assert "kilobytes" not in text and "G = ..." not in text
    assert is_generated_card(text) and not is_generated_card(text.replace("bsa", "BSA"))


def test_card_round_trips_with_hub_metadata_and_eval_results(hub, run, repo_id, monkeypatch):
    folder, _ = run
    report = {"n_generated": 500, "n_real": 25, "extractor": "features32", "fid": 41.5, "kmmd": 0.12,
              "mean_variance": 0.93, "lpips_diversity": 0.21, "kid": 3.25, "memorization_ratio": 0.87,
              "intra_lpips": float("nan")}  # NaN: no training images given, left off the card
    (folder / "eval.json").write_text(json.dumps(report))
    result = invoke("push", folder, repo_id, "--license-name", "base-terms", "--license-link", "LICENSE",
                    "--dataset", "alice/glyphs", "--base-model", "alice/tiny-base")
    assert result.exit_code == 0, result.output
    assert "eval.json" in hub.files(repo_id)
    card = ModelCard.load(hf_hub_download(repo_id, "README.md", endpoint=hub.url))
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)  # ModelCard.validate reads it
    card.validate()  # the server's YAML check, as the Hub does on upload
    data = card.data
    assert (data.license, data.license_name, data.license_link) == ("other", "base-terms", "LICENSE")
    assert data.base_model == "alice/tiny-base" and "base_model:adapter:alice/tiny-base" in data.tags
    assert data.datasets == ["alice/glyphs"] and data.model_name == repo_id.split("/")[1]
    scores = {r.metric_type: (r.metric_value, r.task_type, r.dataset_type) for r in data.eval_results}
    assert scores == {"fid": (41.5, "text-to-image", "alice/glyphs"), "kmmd": (0.12, "text-to-image", "alice/glyphs"),
                      "mean_variance": (0.93, "text-to-image", "alice/glyphs"),
                      "lpips_diversity": (0.21, "text-to-image", "alice/glyphs"),
                      "kid": (3.25, "text-to-image", "alice/glyphs"),
                      "memorization_ratio": (0.87, "text-to-image", "alice/glyphs")}
    assert "| KID | 3.25 |" in card.text and "| memorization ratio | 0.87 |" in card.text
    assert "| FID | 41.5 |" in card.text and "500 generated vs. 25 real images" in card.text


def test_card_lists_the_settings_the_run_used(hub, tmp_path, repo_id):
    folder = tmp_path / "run"
    training = {"command": COMMAND, "steps": 10, "lr_adapter": None, "perceptual": "auto", "perceptual_weight": None,
                "latent_weight": None, "device": "auto", "precision": "auto", "truncation": "base", "class_id": None,
                "lr_base": None, "unfreeze": [], "adapter_options": {}, "out": "runs/x", "quiet": False}
    make_hub_run(folder, (torch.randn(2, 16), torch.tensor([0, 1])), metadata={"training": training})
    (folder / "summary.json").write_text(json.dumps({
        "adapter": {"lr": 0.05}, "perceptual": "base", "loss_weights": {"pixel": 1.0, "latent": 0.05, "perceptual": 1.0},
        "device": "cpu", "precision": "fp32", "truncation": 0.4, "lr_base": None}))
    push_adapter(folder, repo_id)
    text = ModelCard(hub.files(repo_id)["README.md"].decode()).text
    settings = text.split("| setting | value |")[1]
    for row in ("| lr_adapter | `0.05` |", "| perceptual | `base` |", "| perceptual_weight | `1.0` |",
                "| latent_weight | `0.05` |", "| device | `cpu` |", "| precision | `fp32` |", "| truncation | `0.4` |"):
        assert row in settings
    assert "null" not in settings and "`auto`" not in settings and "`base`" in settings
    assert "class_id" not in settings and "lr_base" not in settings and "| out |" not in settings


def test_card_use_it_code_runs_for_a_registered_base(hub, digits32_adapter, repo_id, tmp_path, monkeypatch):
    push_adapter(digits32_adapter, repo_id)
    card = ModelCard(hub.files(repo_id)["README.md"].decode())
    assert card.data.base_model is None and card.data.pipeline_tag == "text-to-image"  # digits32 is on no Hub
    code = card.text.split("```python\n")[1].split("```")[0]
    assert 'base = load_base("digits32")' in code
    monkeypatch.chdir(tmp_path)
    exec(code, {})  # the card's own example, against the test Hub
    assert Image.open(tmp_path / "samples.png").size[0] > 32


def test_registered_base_declares_its_hub_id(hub, tmp_path, repo_id):
    pytest.importorskip("pytorch_pretrained_biggan")
    model = tiny_cond_generator()
    save_adapter(attach_adapter(model, "bsa"), tmp_path / "a", base_id="biggan-deep-128")
    push_adapter(tmp_path / "a", repo_id)
    card = ModelCard(hub.files(repo_id)["README.md"].decode())
    assert card.data.base_model == "osanseviero/BigGAN-deep-128"
    assert "base_model:adapter:osanseviero/BigGAN-deep-128" in card.data.tags
    assert json.loads(hub.files(repo_id)["config.json"])["base_model"] == "osanseviero/BigGAN-deep-128"


def test_card_for_a_bare_saved_adapter(hub, tmp_path, repo_id, cond_inputs):
    model = tiny_cond_generator()
    save_adapter(attach_adapter(model, "bsa"), tmp_path / "bare")
    push_adapter(tmp_path / "bare", repo_id)
    card = ModelCard(hub.files(repo_id)["README.md"].decode())
    assert card.data.base_model is None and card.data.library_name == "adaptkit"
    assert card.data.license == "other" and card.data.license_name == "unspecified"
    assert "base_model_relation" not in card.content.split("---")[1]
    assert "samples.png" not in card.text and "## Training" not in card.text


def test_card_edited_on_the_hub_is_kept(hub, run, repo_id):
    folder, _ = run
    push_adapter(folder, repo_id)
    edited = b"---\nlicense: mit\n---\n# my words\n"
    hub.seed(repo_id, {**hub.files(repo_id), "README.md": edited})
    result = invoke("push", folder, repo_id)
    assert result.exit_code == 0 and "kept the model card on the Hub" in result.stdout
    assert hub.files(repo_id)["README.md"] == edited
    assert invoke("push", folder, repo_id, "--overwrite-card").exit_code == 0
    assert is_generated_card(hub.files(repo_id)["README.md"].decode())


def test_card_edited_in_the_folder_is_uploaded_untouched(hub, run, repo_id):
    folder, _ = run
    push_adapter(folder, repo_id)
    edited = (folder / "README.md").read_text() + "\nMy own notes.\n"
    (folder / "README.md").write_text(edited)
    assert push_adapter(folder, repo_id).card == "yours"
    assert hub.files(repo_id)["README.md"].decode() == edited
    assert push_adapter(folder, repo_id, overwrite_card=True).card == "generated"
    assert (folder / "README.md").read_text() == edited  # an edited local card is never overwritten


# --- offline mode ------------------------------------------------------------------------------------


def test_offline_uses_the_cache_and_sends_nothing(hub, run, repo_id, monkeypatch, tmp_path, cond_inputs):
    folder, expected = run
    push_adapter(folder, repo_id)
    load_adapter(tiny_cond_generator(), repo_id)  # fills the cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sent = len(hub.requests)
    model = tiny_cond_generator()
    load_adapter(model, repo_id)
    assert torch.equal(model(*cond_inputs), expected)
    assert invoke("pull", repo_id, "--out", tmp_path / "offline").exit_code == 0
    assert len(hub.requests) == sent
    one_line_error(invoke("push", folder, repo_id), "HF_HUB_OFFLINE is set: pushing needs the network")
    fresh_cache(tmp_path, monkeypatch)
    with pytest.raises(HubConnectionError, match="not in the Hub cache and HF_HUB_OFFLINE is set"):
        load_adapter(tiny_cond_generator(), repo_id)


# --- security ----------------------------------------------------------------------------------------


@pytest.fixture
def adapter_files(run):
    folder, _ = run
    return {n: (folder / n).read_bytes() for n in ("adapter_config.json", "adapter_model.safetensors")}


@pytest.mark.parametrize("extra, message", [
    ({"pytorch_model.bin": b"pickle"}, "contains pickle files (pytorch_model.bin)"),
    ({"extra/state.pt": b"pickle"}, "contains pickle files (extra/state.pt)"),
    ({"../escape.json": b"{}"}, "contains a file name that escapes the folder ('../escape.json')"),
])
def test_unsafe_repos_are_refused_before_any_download(hub, adapter_files, repo_id, extra, message):
    hub.seed(repo_id, {**adapter_files, **extra})
    sent = len(hub.requests)
    one_line_error(invoke("pull", repo_id), f"refusing {repo_id}: it {message}")
    assert not any("/resolve/" in path for _, path in hub.requests[sent:])
    with pytest.raises(UnsafeRepoError):
        load_adapter(tiny_cond_generator(), repo_id)


def test_only_safe_top_level_files_are_downloaded(hub, adapter_files, repo_id, tmp_path):
    hub.seed(repo_id, {**adapter_files, "train.py": b"import os", "notes.txt": b"x", "sub/deep.json": b"{}",
                       "README.md": b"# hi\n", "grid.jpg": b"jpg"})
    folder = pull_adapter(repo_id, out=tmp_path / "out")
    assert {p.name for p in folder.iterdir()} == {*adapter_files, "README.md", "grid.jpg"}


def test_repo_that_is_not_an_adapter(hub, adapter_files, repo_id):
    hub.seed(repo_id, {"README.md": b"# a model\n", "model.safetensors": b"x"})
    one_line_error(invoke("pull", repo_id), f"{repo_id} is not an adaptkit adapter: it has no adapter_config.json")
    other = repo_id + "-cfg"
    hub.seed(other, {**adapter_files, "adapter_config.json": json.dumps({"format": "peft"}).encode()})
    one_line_error(invoke("pull", other), f"{other} is not a usable adaptkit adapter")


# --- errors ------------------------------------------------------------------------------------------


def test_repo_not_found(hub):
    one_line_error(invoke("pull", "alice/missing"), f"repo alice/missing not found on {hub.url} (check the name")
    one_line_error(invoke("pull", "a/b/c"), "'a/b/c' is not a valid repo id")
    with pytest.raises(HubNotFoundError, match="runs/faces is not a local folder, and repo runs/faces not found"):
        load_adapter(tiny_cond_generator(), "runs/faces")


@pytest.mark.parametrize("token, repo, message", [
    (None, "alice/new", "needs a token for alice/new: log in with `hf auth login` or set HF_TOKEN"),
    ("bogus", "alice/new", "rejected your token (invalid or expired)"),
    ("alice-read", "alice/new", "your token may not write alice/new"),
    ("alice-write", "bob/theirs", "your token may not write bob/theirs"),
])
def test_push_auth_errors_leave_the_folder_untouched(hub, run, monkeypatch, token, repo, message):
    folder, _ = run
    if token is None:
        monkeypatch.delenv("HF_TOKEN")
    else:
        monkeypatch.setenv("HF_TOKEN", token)
    before = folder_state(folder)
    one_line_error(invoke("push", folder, repo), message)
    assert folder_state(folder) == before


def test_server_errors(hub, run, repo_id):
    folder, _ = run
    before = folder_state(folder)
    hub.fail["commit"] = 500
    one_line_error(invoke("push", folder, repo_id), f"the Hub at {hub.url} failed (HTTP 500) on {repo_id}")
    assert folder_state(folder) == before and "README.md" not in {p.name for p in folder.iterdir()}
    hub.fail.clear()
    push_adapter(folder, repo_id)
    hub.fail["info"] = 500
    one_line_error(invoke("pull", repo_id), "failed (HTTP 500)")
    hub.fail["info"] = 404
    one_line_error(invoke("pull", repo_id), "refused the request")


def test_server_down(run, repo_id, monkeypatch):
    folder, _ = run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    one_line_error(invoke("pull", repo_id), "cannot reach the Hub at http://127.0.0.1")
    one_line_error(invoke("pull", repo_id), "to use the copy in the Hub cache, set HF_HUB_OFFLINE=1")
    before = folder_state(folder)
    one_line_error(invoke("push", folder, repo_id), "cannot reach the Hub")
    assert folder_state(folder) == before


def test_adapter_for_another_base(hub, run, repo_id, tmp_path):
    folder, _ = run
    push_adapter(folder, repo_id)
    with pytest.raises(BaseMismatchError, match=r"different base \(made for tests/tiny\)"):
        load_adapter(tiny_cond_generator(ch=8), repo_id)
    result = invoke("pull", repo_id, "--base", "python:models:tiny_generator", "--out", tmp_path / "never")
    one_line_error(result, "this adapter was made for a different base (made for tests/tiny)")
    assert not (tmp_path / "never").exists()
    result = invoke("pull", repo_id, "--base", "python:models:tiny_cond_generator")
    assert result.exit_code == 0 and "fits the given base" in result.stdout


@pytest.fixture(scope="module")
def digits32_adapter(tmp_path_factory):
    """An adapter folder made on the registered base digits32."""
    base = load_base("digits32")
    handle = attach_adapter(base.generator, "bsa", call=base.call)
    return save_adapter(handle, tmp_path_factory.mktemp("digits32") / "bsa", base_id="digits32")


@pytest.mark.parametrize("base", ["digits32", "python:adaptkit.bases.digits32:digits32"])
def test_pull_base_takes_a_registered_name_or_a_base_factory(hub, digits32_adapter, repo_id, base):
    push_adapter(digits32_adapter, repo_id)
    result = invoke("pull", repo_id, "--base", base)
    assert result.exit_code == 0, result.output
    assert "for digits32, fits the given base" in result.stdout


def test_pull_base_from_a_base_factory_checks_its_generator(hub, run, repo_id):
    push_adapter(run[0], repo_id)
    result = invoke("pull", repo_id, "--base", "python:fit_bases:tiny_cond_base")
    assert result.exit_code == 0 and "fits the given base" in result.stdout
    one_line_error(invoke("pull", repo_id, "--base", "digits32"), "made for a different base (made for tests/tiny)")


def test_pull_base_whose_factory_raises_is_one_line_before_any_download(hub, run, repo_id):
    push_adapter(run[0], repo_id)
    sent = len(hub.requests)
    result = invoke("pull", repo_id, "--base", "python:fit_bases:broken_base")
    one_line_error(result, "base python:fit_bases:broken_base: its factory raised RuntimeError: no weights in /nowhere")
    assert "Traceback" not in result.output and len(hub.requests) == sent
    one_line_error(invoke("pull", repo_id, "--base", "nope"), "unknown base 'nope' (available: ")


def test_pull_out_never_clobbers_other_folders(hub, run, repo_id, tmp_path):
    folder, _ = run
    push_adapter(folder, repo_id)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("years of work")
    one_line_error(invoke("pull", repo_id, "--out", busy), "is not empty and not an adapter folder")
    assert [p.name for p in busy.iterdir()] == ["thesis.tex"]
    before = folder_state(folder)  # a fit run: its log, summary and checkpoints are no pull's to replace
    one_line_error(invoke("pull", repo_id, "--out", folder), "holds files a pull does not write (checkpoints, ")
    assert folder_state(folder) == before


def test_push_refuses_a_folder_that_is_not_an_adapter(tmp_path, repo_id):
    (tmp_path / "x").mkdir()
    one_line_error(invoke("push", tmp_path / "x", repo_id), "is not an adapter folder: adapter_config.json is missing")


def test_card_with_broken_metadata_is_refused_before_upload(hub, run, repo_id):
    folder, _ = run
    (folder / "README.md").write_text("---\nlicense: [mit\n---\n# mine\n")
    before = folder_state(folder)
    one_line_error(invoke("push", folder, repo_id), "the Hub refused the model card's metadata (nothing was uploaded)")
    assert folder_state(folder) == before and set(hub.files(repo_id)) == {".gitattributes"}


def test_push_to_a_branch_carries_this_runs_card_and_license(hub, runs, tmp_path, repo_id):
    (v1, _), _ = runs
    push_adapter(v1, repo_id)
    other = tmp_path / "pwgconv-like"  # another adapter, with another parameter count
    make_hub_run(other, (torch.randn(2, 16), torch.tensor([0, 1])))
    shutil.copy(v1 / "README.md", other / "README.md")  # a generated card of the earlier run lying beside it
    result = invoke("push", other, repo_id, "--revision", "dev", "--license", "mit")
    assert result.exit_code == 0, result.output
    card = ModelCard(hub.files(repo_id, "dev")["README.md"].decode())
    assert card.data.license == "mit" and card.data.license_name is None
    params = f"{attach_adapter(tiny_cond_generator(), 'bsa', train_conditional=True).num_parameters():,}"
    assert f"| adapter parameters | {params} |" in card.text and 'revision="dev"' in card.text
    assert ModelCard(hub.files(repo_id)["README.md"].decode()).data.license == "other"  # main is untouched


def test_download_counter_is_fetched_by_every_download(hub, run, repo_id, tmp_path, monkeypatch):
    push_adapter(run[0], repo_id)
    counter = json.loads(hub.files(repo_id)["config.json"])
    assert counter["library_name"] == "adaptkit" and counter["adapter"] == "bsa"
    for i, load in enumerate((lambda: load_adapter(tiny_cond_generator(), repo_id), lambda: pull_adapter(repo_id))):
        fresh_cache(tmp_path, monkeypatch, f"cache-{i}")
        sent = len(hub.requests)
        load()
        assert any(path.endswith("/config.json") for _, path in hub.requests[sent:])


def test_load_from_the_hub_prints_no_progress_bars(hub, run, repo_id, capfd, monkeypatch):
    push_adapter(run[0], repo_id)
    monkeypatch.setenv("TQDM_POSITION", "-1")  # huggingface_hub's bars then show as on a terminal
    enable_progress_bars()  # whatever an earlier command set
    capfd.readouterr()
    load_adapter(tiny_cond_generator(), repo_id)
    out, err = capfd.readouterr()
    assert out == "" and "Fetching" not in err and "complete" not in err, err
    assert not are_progress_bars_disabled()  # the user's own setting is left as it was


PEFT_CONFIG = {"peft_type": "LORA", "base_model_name_or_path": "some/model", "r": 8, "task_type": "CAUSAL_LM"}


def test_a_peft_adapter_is_named_as_such(hub, adapter_files, repo_id, tmp_path):
    hub.seed(repo_id, {**adapter_files, "adapter_config.json": json.dumps(PEFT_CONFIG).encode()})
    one_line_error(invoke("pull", repo_id), "holds a PEFT adapter (peft_type LORA), not an adaptkit one: load it "
                                            "with peft (PeftModel.from_pretrained)")
    folder = tmp_path / "peft"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps(PEFT_CONFIG))
    with pytest.raises(CheckpointError, match=r"holds a PEFT adapter \(peft_type LORA\)"):
        load_adapter(tiny_cond_generator(), folder)


def test_adapter_config_names_the_library_and_older_files_still_load(run, cond_inputs):
    folder, expected = run
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["library"] == "adaptkit" and config["format"] == "adaptkit.adapter" and config["format_version"] == 1
    del config["library"]  # as adaptkit wrote it before the key existed
    (folder / "adapter_config.json").write_text(json.dumps(config))
    model = tiny_cond_generator()
    load_adapter(model, folder)
    assert torch.equal(model(*cond_inputs), expected)


# --- all-or-nothing pulls, locks, timeouts ------------------------------------------------------------


@pytest.fixture
def pulled(hub, run, repo_id, tmp_path):
    """An adapter folder made by a pull (of ``run``), and its files."""
    push_adapter(run[0], repo_id)
    folder = pull_adapter(repo_id, out=tmp_path / "pulled")
    return folder, folder_state(folder)


def test_pull_of_a_truncated_adapter_leaves_the_folder_as_it_was(hub, pulled, adapter_files, repo_id):
    folder, before = pulled
    weights = adapter_files["adapter_model.safetensors"]
    hub.seed(repo_id + "-cut", {**adapter_files, "adapter_model.safetensors": weights[: len(weights) // 2]})
    one_line_error(invoke("pull", repo_id + "-cut", "--out", folder), "is corrupt or truncated")
    assert folder_state(folder) == before


def test_pull_of_a_repo_without_latents_replaces_the_whole_adapter_folder(hub, pulled, adapter_files, repo_id):
    folder, before = pulled
    assert {"latents.safetensors", "samples.png"} <= {p.name for p in before}
    hub.seed(repo_id + "-bare", adapter_files)
    assert invoke("pull", repo_id + "-bare", "--out", folder).exit_code == 0
    assert {p.name for p in folder.iterdir()} == set(adapter_files)  # nothing of the old adapter is left beside it


def test_pull_that_fills_the_disk_leaves_the_folder_as_it_was(hub, pulled, repo_id, monkeypatch):
    folder, before = pulled
    copy, copied = shutil.copyfile, []

    def disk_fills(src, dst):
        if copied:
            raise OSError(28, "No space left on device", str(dst))
        copied.append(copy(src, dst))

    monkeypatch.setattr(shutil, "copyfile", disk_fills)
    one_line_error(invoke("pull", repo_id, "--out", folder), "the disk is full")
    assert folder_state(folder) == before
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_pull_into_a_folder_another_process_writes_is_refused(hub, pulled, repo_id):
    folder, before = pulled
    with folder_lock(folder, "adaptkit fit --out elsewhere"):
        result = invoke("pull", repo_id, "--out", folder)
    one_line_error(result, f"is being written by adaptkit fit --out elsewhere (pid {os.getpid()} on ")
    assert folder_state(folder) == before


def _pull_in_thread(repo_id):
    """``adaptkit pull`` in a thread: (the result or None if it is still running after 20 s, seconds taken)."""
    box, start = [], time.perf_counter()
    thread = threading.Thread(target=lambda: box.append(invoke("pull", repo_id)), daemon=True)
    thread.start()
    thread.join(20)
    return (box[0] if box else None), time.perf_counter() - start


def test_a_hub_that_never_answers_times_out_with_one_line(hub, run, repo_id, monkeypatch):
    push_adapter(run[0], repo_id)
    monkeypatch.setenv("ADAPTKIT_HUB_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("ADAPTKIT_HUB_RETRIES", "1")
    hub.mode = "hang"
    result, seconds = _pull_in_thread(repo_id)
    hub.mode = None
    assert result is not None, "pull hung on a Hub that never answers"
    one_line_error(result, f"the Hub at {hub.url} did not answer in time on {repo_id}")
    assert "ADAPTKIT_HUB_READ_TIMEOUT" in result.stderr and seconds < 10


def test_a_hub_answering_html_is_one_line(hub, run, repo_id):
    push_adapter(run[0], repo_id)
    hub.mode = "html"
    one_line_error(invoke("pull", repo_id), f"{hub.url} answered {repo_id} with something that is not the Hub's JSON")
    with pytest.raises(HubError, match="check HF_ENDPOINT"):
        load_adapter(tiny_cond_generator(), repo_id)


def test_reads_are_retried_after_a_transient_failure(hub, run, repo_id, tmp_path, monkeypatch):
    push_adapter(run[0], repo_id)
    hub.fail_next["info"] = [503]
    monkeypatch.setattr(time, "sleep", lambda s: None)
    assert pull_adapter(repo_id, out=tmp_path / "a").is_dir()
    hub.fail_next["info"] = [503, 503, 503]
    with pytest.raises(HubError, match="HTTP 503"):
        pull_adapter(repo_id, out=tmp_path / "b")
    assert not hub.fail_next["info"]  # three tries: the first and two retries


@pytest.mark.parametrize("value", ["abc", "-1", "0"])
def test_bad_timeout_setting_is_one_line(hub, run, repo_id, monkeypatch, value):
    monkeypatch.setenv("ADAPTKIT_HUB_READ_TIMEOUT", value)
    one_line_error(invoke("pull", repo_id), "ADAPTKIT_HUB_READ_TIMEOUT=")
