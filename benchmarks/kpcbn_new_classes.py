"""Does kpcbn at fit's defaults draw new classes that look unlike the base's? The basis of its
``glo`` learning rate.

Two Omniglot characters (20 black-on-white drawings each, as drawn; fit's ``--invert auto``
inverts them for digits32) become two class folders, the new classes 8 and 9 of digits32. One
``fit --adapter kpcbn`` per ``--lr-adapter`` value (``default``: the adapter's recommended rate),
then per run: the collapse guard's checks (``summary.json``), and 32 samples of each new class from
the same latents (``sample_run``): their ink (fraction of stroke pixels, in the generator's
white-on-black) and how far apart the two classes' samples are (mean |x_a − x_b|) beside how far
apart the two classes' real mean images are.

    python benchmarks/kpcbn_new_classes.py [--data ../shared/data] [--objective glo] [--steps 300] \\
        [--lr default 0.05] [--json benchmarks/results/kpcbn_new_classes_glo.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import busy_processes, write_json  # noqa: E402

from adaptkit import FitConfig, fit  # noqa: E402
from adaptkit.data import load_image_folder  # noqa: E402
from adaptkit.io.run_dir import load_run  # noqa: E402
from adaptkit.sample import sample_run  # noqa: E402

CHARACTERS = ("Balinese/character01", "Balinese/character02")


def class_folders(zip_path: Path, folder: Path) -> list[str]:
    """The two characters' PNGs as drawn, one folder per character (``Balinese_character01``, …)."""
    names = []
    with zipfile.ZipFile(zip_path) as archive:
        for character in CHARACTERS:
            name = character.replace("/", "_")
            (folder / name).mkdir(parents=True)
            for member in archive.namelist():
                if f"/{character}/" in member and member.endswith(".png"):
                    (folder / name / Path(member).name).write_bytes(archive.read(member))
            names.append(name)
    return names


def measure(run_dir: Path, names: list[str], real: torch.Tensor, labels: torch.Tensor) -> dict:
    """Ink of each new class's samples, and their distance apart beside the real classes'."""
    run = load_run(run_dir)
    samples = [sample_run(run, 32, class_id=name, seed=0) for name in names]
    means = [real[labels == i].mean(0) for i in range(len(names))]
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "ink": {name: round(float((x > -0.5).float().mean()), 3) for name, x in zip(names, samples)},
        "samples_apart": round(float((samples[0] - samples[1]).abs().mean()), 3),
        "real_means_apart": round(float((means[0] - means[1]).abs().mean()), 3),
        "collapse_checks": summary["collapse"]["history"],
        "final_losses": summary["final_losses"],
        "train_time_s": summary["train_time_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--objective", default="glo")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", nargs="+", default=["default", "0.05"])
    parser.add_argument("--json", default="benchmarks/results/kpcbn_new_classes_glo.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {"command": " ".join(sys.argv), "characters": list(CHARACTERS), "objective": args.objective,
               "steps": args.steps, "busy_at_start": busy_processes(), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        names = class_folders(args.data / "omniglot" / "images_background_small1.zip", data)
        images = load_image_folder(data, channels=1, resolution=32)
        real = images.images.neg()   # as fit trains on them: inverted
        labels = torch.tensor([names.index(f) for f in images.folders])
        for lr in args.lr:
            started = time.perf_counter()
            out = Path(tmp) / f"run_{lr}"
            fit(FitConfig(data=str(data), out=str(out), adapter="kpcbn", objective=args.objective, steps=args.steps,
                          lr_adapter=None if lr == "default" else float(lr), quiet=True))
            results["runs"][lr] = {**measure(out, names, real, labels), "wall_s": round(time.perf_counter() - started, 1)}
            print(lr, {k: v for k, v in results["runs"][lr].items() if k != "collapse_checks"})
    write_json(args.json, results)


if __name__ == "__main__":
    main()
