"""``adaptkit push`` and ``adaptkit pull``: share adapters (never bases) through the Hugging Face Hub."""
from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from ..bases import load_base
from ..io.card import count_parameters
from ..io.checkpoint import read_adapter_config
from ..io.hub import pull_adapter, push_adapter
from ..io.run_dir import CARD_NAME
from . import cli
from .options import base_size_options

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
@click.option("--license", "license_", default="other", show_default=True,
              help="License id in the card's metadata (a Hub license id such as mit, apache-2.0, or other).")
@click.option("--license-name", metavar="NAME", help="With --license other: its short name (default: unspecified).")
@click.option("--license-link", metavar="URL", help="With --license other: where its text is.")
@click.option("--base-model", metavar="ID", help="The base's Hub model id for the card (default: the one a "
              "registered base declares; give it for a python: base).")
@click.option("--dataset", "datasets", multiple=True, metavar="ID",
              help="A Hub dataset id the adapter was trained on (repeatable).")
def push_command(
    folder: Path, repo_id: str, private: bool, revision: str | None, commit_message: str | None,
    overwrite_card: bool, license_: str, license_name: str | None, license_link: str | None,
    base_model: str | None, datasets: tuple[str, ...],
) -> None:
    """Make the Hub repo REPO_ID (or --revision's branch) hold the adapter in DIR: config, weights,
    latents, eval.json, PNGs, model card.

    The repo is created if needed; files of an earlier push that DIR lacks are deleted, and nothing
    is committed when the repo already holds these files. Base weights and training state never
    leave DIR. Uses the Hub login (`hf auth login` or HF_TOKEN) and HF_ENDPOINT.
    """
    with console.status(f"pushing {folder} to {repo_id}"):
        result = push_adapter(
            folder, repo_id, private=private, revision=revision, commit_message=commit_message,
            overwrite_card=overwrite_card, license=license_, license_name=license_name,
            license_link=license_link, base_model=base_model, datasets=list(datasets),
        )
    if not result.changed:
        console.print(f"nothing changed: {repo_id} already holds these files (commit {result.commit[:10]})")
    else:
        kept = f" ({len(result.unchanged)} unchanged)" if result.unchanged else ""
        if result.uploaded:
            console.print(f"uploaded {', '.join(result.uploaded)}{kept} in commit {result.commit[:10]}")
        if result.deleted:
            commit = "" if result.uploaded else f" in commit {result.commit[:10]}"
            console.print(f"removed from the repo (not in {folder}): {', '.join(result.deleted)}{commit}")
    if CARD_NAME in result.uploaded or result.card != "generated":
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
    with console.status(f"pulling {repo_id}"):
        folder = pull_adapter(repo_id, revision=revision, out=out, model=model)
    config = read_adapter_config(folder)
    base_id = config["base"].get("id") or "an unnamed base"
    fits = ", fits the given base" if model is not None else ""
    console.print(f"{repo_id}: {config['adapter']} adapter, {count_parameters(folder):,} parameters, "
                  f"for {base_id}{fits}")
    console.print(str(folder))
