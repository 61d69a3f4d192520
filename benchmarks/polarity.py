"""Does `fit --invert auto` tell black-on-white from white-on-black training sets? The basis of its
default.

For each source, ``--trials`` random sets of ``--shots`` images (a user's few-shot folder) are
checked against the embedded base digits32 (white strokes on black) with the check fit runs
(``adaptkit.polarity.check_polarity``); the table gives how often each source is found opposite to
the base (and so inverted by ``--invert auto``). Sources, from ``../shared/data`` (never copied):
each Omniglot alphabet as drawn (black on white, read from its PNG files by fit's own reader) and
inverted, MNIST test digits (white on black), CIFAR-10 test photos in grayscale (neither: must not
be inverted), and the demo's typeset digits.

    python benchmarks/polarity.py [--data ../shared/data] [--shots 25] [--trials 20] [--json benchmarks/results/polarity.json]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import write_json  # noqa: E402

from adaptkit.bases import load_base  # noqa: E402
from adaptkit.bases.data32 import load_image_tar, load_mnist  # noqa: E402
from adaptkit.data import load_image_folder  # noqa: E402
from adaptkit.demo import write_demo_set  # noqa: E402
from adaptkit.polarity import check_polarity  # noqa: E402


def omniglot_alphabets(zip_path: Path, folder: Path) -> dict[str, torch.Tensor]:
    """Each alphabet's drawings as fit reads them (its PNG files, extracted to ``folder``)."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    roots = {p.name: p for p in folder.glob("*/*") if p.is_dir()}
    return {name: load_image_folder(root, channels=1, resolution=32).images for name, root in sorted(roots.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--shots", type=int, default=25)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--json", default="benchmarks/results/polarity.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = load_base("digits32")
    with tempfile.TemporaryDirectory() as tmp:
        sources: dict[str, tuple[torch.Tensor, bool]] = {}
        for name, images in omniglot_alphabets(args.data / "omniglot" / "images_background_small1.zip",
                                               Path(tmp) / "omniglot").items():
            sources[f"Omniglot {name} (black on white)"] = (images, True)
            sources[f"Omniglot {name}, inverted"] = (images.neg(), False)
        sources["MNIST test digits (white on black)"] = (load_mnist(args.data / "mnist-test").images, False)
        cifar = load_image_tar(args.data / "cifar10" / "cifar10-jpg.tar.gz")["test"].images
        sources["CIFAR-10 test photos, gray"] = (cifar.mean(1, keepdim=True), False)
        demo = load_image_folder(write_demo_set(Path(tmp) / "demo", n=200), channels=1, resolution=32).images
        sources["the demo's digits (white on black)"] = (demo, False)
    g = torch.Generator().manual_seed(0)
    table = Table(title=f"--invert auto against digits32: {args.trials} random sets of {args.shots} images per source")
    for col in ("source", "images", "should invert", "inverted", "background (median)", "mean (median)"):
        table.add_column(col, justify="left" if col == "source" else "right")
    rows, wrong = [], 0
    for name, (images, expected) in sources.items():
        checks = [check_polarity(images[torch.randperm(len(images), generator=g)[:args.shots]], base)
                  for _ in range(args.trials)]
        inverted = sum(c.opposite for c in checks)
        wrong += inverted if not expected else args.trials - inverted
        backgrounds = torch.tensor([c.data.background for c in checks])
        means = torch.tensor([c.data.mean for c in checks])
        rows.append({"source": name, "images": len(images), "should_invert": expected, "inverted": inverted,
                     "trials": args.trials, "background_median": float(backgrounds.median()),
                     "mean_median": float(means.median())})
        table.add_row(name, str(len(images)), "yes" if expected else "no", f"{inverted}/{args.trials}",
                      f"{backgrounds.median():+.2f}", f"{means.median():+.2f}")
    table.caption = (f"digits32's own samples: background {checks[0].base.background:+.2f}, mean "
                     f"{checks[0].base.mean:+.2f}; misclassified sets: {wrong}")
    Console().print(table)
    write_json(args.json, {"command": " ".join(["python", "benchmarks/polarity.py", *sys.argv[1:]]),
                           "shots": args.shots, "trials": args.trials, "base_background": checks[0].base.background,
                           "base_mean": checks[0].base.mean, "misclassified": wrong, "rows": rows})


if __name__ == "__main__":
    main()
