"""The model card (``README.md``) of an adapter repo on the Hub.

A generated card ends with a marker holding the sha256 of the rest of the card. A card whose marker
is missing or does not match was edited by hand, and ``push`` keeps it unless told otherwise.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from safetensors import safe_open

from .checkpoint import WEIGHTS_NAME

CARD_NAME = "README.md"
TAGS = ["adaptkit", "few-shot-image-generation"]
SAMPLES_NAME = "samples.png"
_MARKER = re.compile(r"<!-- adaptkit card sha256:([0-9a-f]{64}) -->\n?")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def is_generated_card(text: str) -> bool:
    """True for a card exactly as adaptkit generated it; False if it was edited (or not ours)."""
    match = _MARKER.search(text)
    return bool(match) and _digest(text[: match.start()] + text[match.end():]) == match.group(1)


def hub_model_id(base_id: str | None) -> str | None:
    """``base_id`` when it reads as a Hub model id ``owner/name`` (for ``base_model``), else None."""
    if not base_id or "/" not in base_id:
        return None
    try:
        validate_repo_id(base_id)
    except HFValidationError:
        return None
    return base_id


def count_parameters(folder: Path) -> int:
    """Number of adapter parameters in the folder's weights, read from the header only."""
    with safe_open(str(folder / WEIGHTS_NAME), "pt") as f:
        total = 0
        for key in f.keys():
            n = 1
            for dim in f.get_slice(key).get_shape():
                n *= dim
            total += n
        return total


def _value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _load_snippet(repo_id: str, revision: str | None, base_id: str | None) -> str:
    base = f"the base this adapter was trained on: {base_id}" if base_id else "the base this adapter was trained on"
    rev_py = f', revision="{revision}"' if revision else ""
    rev_cli = f" --revision {revision}" if revision else ""
    return (
        "```python\nimport adaptkit\n\n"
        f"G = ...  # {base}\n"
        f'handle = adaptkit.load_adapter(G, "{repo_id}"{rev_py})  # checks G is that base\n```\n\n'
        f"or download it into a folder: `adaptkit pull {repo_id}{rev_cli} --out {repo_id.split('/')[-1]}`\n"
    )


def build_card(
    folder: Path,
    config: dict[str, Any],
    repo_id: str,
    *,
    images: list[str],
    revision: str | None = None,
    license: str = "other",
) -> str:
    """The card's text for the adapter in ``folder`` (read defensively: a bare ``save_adapter``
    folder has no training metadata), ending with the marker."""
    base = config.get("base") or {}
    base_id = base.get("id")
    adapter = config.get("adapter", "adapter")
    metadata = config.get("metadata") or {}
    training = metadata.get("training") if isinstance(metadata.get("training"), dict) else {}
    data = ModelCardData(
        library_name="adaptkit",
        base_model=hub_model_id(base_id),
        tags=[TAGS[0], adapter, *TAGS[1:]],
        license=license,
    )
    name = repo_id.split("/")[-1]
    lines = [f"# {name}", ""]
    lines += [
        f"An adaptkit **{adapter}** adapter for the frozen base "
        f"`{base_id or 'not named at save time'}`. Only the adapter is here (kilobytes); you need the base "
        "to use it.",
        "",
    ]
    if SAMPLES_NAME in images:
        lines += [f"![samples]({SAMPLES_NAME})", ""]
    lines += ["## Use it", "", _load_snippet(repo_id, revision, base_id)]
    params = count_parameters(folder)
    targets = config.get("targets") or []
    lines += [
        "## Adapter",
        "",
        "| | |",
        "|---|---|",
        f"| adapter | `{adapter}` (plugin {(config.get('plugin') or {}).get('distribution', '?')} "
        f"{(config.get('plugin') or {}).get('version', '?')}) |",
        f"| adapter parameters | {params:,} |",
        f"| target layers | {len(targets)} |",
        f"| options | `{json.dumps(config.get('config', {}))}` |",
        f"| base | `{base_id or '-'}`" + (f" @ `{base['revision']}`" if base.get("revision") else "") + " |",
        f"| base fingerprint | `{base.get('fingerprint', '-')}` |",
        f"| adaptkit | {config.get('adaptkit_version', '?')} |",
        "",
        "`load_adapter` refuses a base whose target layers differ from the fingerprint.",
        "",
    ]
    if training:
        lines += ["## Training", ""]
        if training.get("command"):
            lines += ["```bash", str(training["command"]), "```", ""]
        settings = {k: v for k, v in training.items() if k != "command"}
        if settings:
            lines += ["| setting | value |", "|---|---|"]
            lines += [f"| {k} | `{_value(v)}` |" for k, v in settings.items()]
            lines.append("")
    others = [image for image in images if image != SAMPLES_NAME]
    if others:
        lines += ["## Images", ""] + [f"![{Path(i).stem}]({i})" for i in others] + [""]
    body = "\n".join(lines)
    text = str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))
    return f"{text}<!-- adaptkit card sha256:{_digest(text)} -->\n"
