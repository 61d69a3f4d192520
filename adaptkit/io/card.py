"""The model card (``README.md``) of an adapter repo on the Hub.

The metadata is huggingface_hub's ``ModelCardData``: ``library_name``, ``base_model`` with
``base_model_relation: adapter`` and PEFT's ``base_model:adapter:<id>`` tag, ``pipeline_tag``,
``license`` (with ``license_name``/``license_link`` when ``other``), ``datasets`` and, when the run
folder holds ``eval.json``, its scores as ``model-index`` results.

A generated card ends with a marker holding the sha256 of the rest of the card. A card whose marker
is missing or does not match was edited by hand, and ``push`` keeps it unless told otherwise.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from safetensors import safe_open

from ..bases import base_hub_model, is_base_spec
from .run_dir import EVAL_JSON, SAMPLES_PNG, SUMMARY_JSON, WEIGHTS_NAME, base_options

TAGS = ("adaptkit", "few-shot-image-generation")
UNCONDITIONAL_TASK = "unconditional-image-generation"
CONDITIONAL_TASK = "text-to-image"
"""The Hub has no class-conditional task; a class name is the prompt (BigGAN repos on the Hub use it too)."""
UNSPECIFIED_LICENSE = "unspecified"
OTHER = "other"
NOT_SETTINGS = frozenset({"data", "out", "resume", "overwrite", "quiet", "report_to", "checkpoint_every", "log_every"})
"""Fit options that say where and how verbosely a run went, not how it trained: left off the card."""
EVAL_METRICS = (("fid", "FID"), ("kid", "KID"), ("kmmd", "KMMD"), ("mean_variance", "mean variance"),
                ("lpips_diversity", "LPIPS diversity"), ("intra_lpips", "intra-cluster LPIPS"),
                ("memorization_ratio", "memorization ratio"), ("near_copies", "near copies"))
"""The ``eval.json`` scores a card shows and lists as model-index results (those present and finite)."""
_MARKER = re.compile(r"<!-- adaptkit card sha256:([0-9a-f]{64}) -->\n?")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def is_generated_card(text: str) -> bool:
    """True for a card exactly as adaptkit generated it; False if it was edited (or not ours)."""
    match = _MARKER.search(text)
    return bool(match) and _digest(text[: match.start()] + text[match.end():]) == match.group(1)


def hub_model_id(base_id: str | None) -> str | None:
    """``base_id`` when it reads as a Hub model id ``owner/name`` (for ``base_model``), else None."""
    if not base_id or "/" not in base_id or ":" in base_id:
        return None
    try:
        validate_repo_id(base_id)
    except HFValidationError:
        return None
    return base_id


def resolve_base_model(base_id: str | None, given: str | None = None) -> str | None:
    """The card's ``base_model``: ``given`` (``push --base-model``), else the Hub id a registered base
    declares, else ``base_id`` itself when it reads as a Hub model id."""
    if given:
        return given
    if base_id and is_base_spec(base_id):
        return base_hub_model(base_id)
    return hub_model_id(base_id)


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


def format_size(size: int) -> str:
    """``816 B``, ``3.5 kB``, ``1.78 MB`` (decimal units, three significant digits)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


def _read_json(file: Path) -> dict[str, Any]:
    """A JSON object from ``file``; ``{}`` when it is missing or not an object (the card is best effort)."""
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def resolved_settings(training: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The run's training settings with ``auto``/default values replaced by what the run used (from
    ``summary.json``); settings that stayed unset (not used) are left out."""
    weights = summary.get("loss_weights") or {}
    used = {
        "lr_adapter": (summary.get("adapter") or {}).get("lr"),
        "lr_base": summary.get("lr_base"),
        "perceptual": summary.get("perceptual"),
        "perceptual_weight": weights.get("perceptual"),
        "latent_weight": weights.get("latent"),
        "truncation": summary.get("truncation"),
        "device": summary.get("device"),
        "precision": summary.get("precision"),
    }
    settings = {k: v for k, v in training.items() if k != "command" and k not in NOT_SETTINGS}
    settings.update({k: v for k, v in used.items() if k in settings and v is not None})
    return {k: v for k, v in settings.items() if v not in (None, "auto", [], {})}


def _value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def eval_results(report: dict[str, Any], task: str, datasets: list[str]) -> list[EvalResult]:
    """``adaptkit eval --json`` scores as model-index results (against the given dataset, else the real images)."""
    dataset = datasets[0] if datasets else "real-images"
    return [
        EvalResult(task_type=task, dataset_type=dataset, dataset_name=dataset, metric_type=key, metric_name=name,
                   metric_value=report[key])
        for key, name in EVAL_METRICS if _finite(report.get(key))
    ]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _use_it(repo_id: str, revision: str | None, base_id: str | None, config: dict[str, Any],
            summary: dict[str, Any]) -> list[str]:
    rev_py = f', revision="{revision}"' if revision else ""
    rev_cli = f" --revision {revision}" if revision else ""
    lines = ["```python", "import adaptkit"]
    if base_id and is_base_spec(base_id):
        options = "".join(f", {k}={v!r}" for k, v in base_options(config).items())
        classes = summary.get("classes") or []
        class_arg = f", class_id={classes[0]}" if classes and not (config.get("metadata") or {}).get("class_names") else ""
        lines += [
            "from adaptkit.bases import load_base",
            "",
            f'base = load_base("{base_id}"{options})  # the base it was trained on',
            f'adaptkit.load_adapter(base.generator, "{repo_id}"{rev_py})  # refuses any other base',
            f"images = adaptkit.sample_images(base, 16{class_arg})  # (16, C, H, W) in [-1, 1]",
            'adaptkit.save_grid(images, "samples.png")',
        ]
    else:
        named = f"base {base_id}" if base_id else "base this adapter was made for (not named at save time)"
        lines += [
            "",
            f"generator = ...  # the torch.nn.Module of the {named}",
            f'adaptkit.load_adapter(generator, "{repo_id}"{rev_py})  # refuses any other base',
        ]
    name = repo_id.split("/")[-1]
    lines += ["```", "", f"or on the command line: `adaptkit pull {repo_id}{rev_cli} --out {name}`, then "
              f"`adaptkit sample {name}`.", ""]
    return lines


def build_card(
    folder: Path,
    config: dict[str, Any],
    repo_id: str,
    *,
    images: list[str],
    revision: str | None = None,
    license: str = OTHER,
    license_name: str | None = None,
    license_link: str | None = None,
    base_model: str | None = None,
    datasets: list[str] | None = None,
) -> str:
    """The card's text for the adapter in ``folder`` (read defensively: a bare ``save_adapter``
    folder has no training metadata), ending with the marker. ``base_model`` overrides the Hub id
    found for the recorded base (see :func:`resolve_base_model`)."""
    base = config.get("base") or {}
    base_id = base.get("id")
    adapter = config.get("adapter", "adapter")
    metadata = config.get("metadata") or {}
    training = metadata.get("training") if isinstance(metadata.get("training"), dict) else {}
    summary = _read_json(folder / SUMMARY_JSON)
    report = _read_json(folder / EVAL_JSON)
    datasets = list(datasets or [])
    hub_base = resolve_base_model(base_id, base_model)
    task = CONDITIONAL_TASK if (config.get("call") or {}).get("num_classes") else UNCONDITIONAL_TASK
    name = repo_id.split("/")[-1]
    tags = [TAGS[0], adapter, *TAGS[1:]] + ([f"base_model:adapter:{hub_base}"] if hub_base else [])
    other = license == OTHER
    results = eval_results(report, task, datasets)
    data = ModelCardData(
        library_name="adaptkit",
        base_model=hub_base,
        base_model_relation="adapter" if hub_base else None,
        pipeline_tag=task,
        tags=tags,
        license=license,
        license_name=(license_name or UNSPECIFIED_LICENSE) if other else None,
        license_link=license_link if other else None,
        datasets=datasets or None,
        model_name=name if results else None,
        eval_results=results or None,
    )
    params, size = count_parameters(folder), (folder / WEIGHTS_NAME).stat().st_size
    lines = [f"# {name}", ""]
    lines += [
        f"An adaptkit **{adapter}** adapter for the frozen base `{base_id or 'not named at save time'}`: "
        f"{params:,} parameters in a {format_size(size)} file. Only the adapter is here; you need the base "
        "to use it.",
        "",
    ]
    if SAMPLES_PNG in images:
        lines += [f"![samples]({SAMPLES_PNG})", ""]
    lines += ["## Use it", ""] + _use_it(repo_id, revision, base_id, config, summary)
    if results:
        lines += ["## Evaluation", "", f"`adaptkit eval`: {report.get('n_generated', '?')} generated vs. "
                  f"{report.get('n_real', '?')} real images, feature network {report.get('extractor', '?')}.", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {r.metric_name} | {r.metric_value:.4g} |" for r in results]
        lines.append("")
    targets = config.get("targets") or []
    plugin = config.get("plugin") or {}
    lines += [
        "## Adapter",
        "",
        "| | |",
        "|---|---|",
        f"| adapter | `{adapter}` (plugin {plugin.get('distribution', '?')} {plugin.get('version', '?')}) |",
        f"| adapter parameters | {params:,} |",
        f"| {WEIGHTS_NAME} | {format_size(size)} |",
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
        settings = resolved_settings(training, summary)
        if settings:
            lines += ["| setting | value |", "|---|---|"]
            lines += [f"| {k} | `{_value(v)}` |" for k, v in settings.items()]
            lines.append("")
    others = [image for image in images if image != SAMPLES_PNG]
    if others:
        lines += ["## Images", ""] + [f"![{Path(i).stem}]({i})" for i in others] + [""]
    body = "\n".join(lines)
    text = str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))
    return f"{text}<!-- adaptkit card sha256:{_digest(text)} -->\n"
