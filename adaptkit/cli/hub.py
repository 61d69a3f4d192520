"""``adaptkit push`` and ``adaptkit pull``: share adapters (never bases) through the Hugging Face Hub."""
from __future__ import annotations

from pathlib import Path

import click
from huggingface_hub.utils import disable_progress_bars
from rich.console import Console

from ..bases import load_base
from ..io.card import count_parameters
from ..io.checkpoint import read_adapter_config
from ..io.hub import pull_adapter, push_adapter
from . import cli
from .base_sizes import base_size_options

console = Console(highlight=False, soft_wrap=True)
CARD_NOTES = {
    "yours": "uploaded your edited README.md as the model card",
    "kept": "kept the model card on the Hub: it was edited there (--overwrite-card replaces it)",
    "generated": "generated the model card (README.md)",
}


@cli.command("push")
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.argument("repo_id", metavar="REPO_ID")
@click.option("--private", is_flag=True, help="Create the repo private (an existing repo keeps its visibility).")
@click.option("--revision", metavar="BRANCH", help="Push to this branch, created from main if needed.")
@click.option("--commit-message", "-m", help="Commit message (default: names the adapter and adaptkit version).")
@click.option("--overwrite-card", is_flag=True, help="Regenerate README.md even if it was edited (here or on the Hub).")
@click.option("--license", "license_", default="other", show_default=True, help="License id in the card's metadata.")
def push_command(
    folder: Path, repo_id: str, private: bool, revision: str | None, commit_message: str | None,
    overwrite_card: bool, license_: str,
) -> None:
    """Upload the adapter in DIR (config, weights, latents, PNGs, model card) to the Hub repo REPO_ID.

    The repo is created if needed; base weights and training state never leave DIR. Uses the Hub
    login (`hf auth login` or HF_TOKEN) and HF_ENDPOINT.
    """
    disable_progress_bars()
    with console.status(f"pushing {folder} to {repo_id}"):
        result = push_adapter(
            folder, repo_id, private=private, revision=revision, commit_message=commit_message,
            overwrite_card=overwrite_card, license=license_,
        )
    console.print(f"uploaded {', '.join(result.uploaded)} in commit {result.commit[:10]}")
    if result.deleted:
        console.print(f"removed from the repo (no longer in {folder}): {', '.join(result.deleted)}")
    console.print(CARD_NOTES[result.card])
    console.print(result.url)


@cli.command("pull")
@click.argument("repo_id", metavar="REPO_ID")
@click.option("--revision", metavar="REV", help="Branch, tag or commit (default: main).")
@click.option("--out", type=click.Path(path_type=Path), metavar="DIR",
              help="Copy the adapter into DIR (new, empty, or an adapter folder); default: stay in the Hub cache.")
@click.option("--base", metavar="SPEC", help="Refuse the adapter unless it fits this base: a name from "
              "`adaptkit bases` or python:package.module:factory.")
@base_size_options
def pull_command(repo_id: str, revision: str | None, out: Path | None, base: str | None, latent_dim: int | None,
                 num_classes: int | None) -> None:
    """Download the adapter in the Hub repo REPO_ID through the Hub cache and check it.

    Only safetensors, JSON, images and README.md are downloaded; a repo holding pickles or file
    names that escape the folder is refused. With HF_HUB_OFFLINE=1 the cache alone is used.
    """
    model = load_base(base, latent_dim=latent_dim, num_classes=num_classes).generator if base else None
    disable_progress_bars()
    with console.status(f"pulling {repo_id}"):
        folder = pull_adapter(repo_id, revision=revision, out=out, model=model)
    config = read_adapter_config(folder)
    base_id = config["base"].get("id") or "an unnamed base"
    fits = ", fits the given base" if model is not None else ""
    console.print(f"{repo_id}: {config['adapter']} adapter, {count_parameters(folder):,} parameters, "
                  f"for {base_id}{fits}")
    console.print(str(folder))
