"""A fast command line: ``--help``/``--version`` and ``import adaptkit`` load no torch; a picture
loads torchvision, nothing earlier does; the command list needs no command module."""
import subprocess
import sys
from pathlib import Path

import click
import pytest

from adaptkit.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parents[1]


WATCHED = {"torch", "torchvision", "huggingface_hub", "adaptkit_plugins"}


def loaded_after(*stages: str) -> list[set[str]]:
    """The packages of ``WATCHED`` imported after each stage of code, run in one fresh interpreter."""
    probe = "import sys\n" + "".join(
        f"{stage}\nprint(sorted({{m.split('.')[0] for m in sys.modules}}))\n" for stage in stages)
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [set(eval(line)) & WATCHED for line in out.strip().splitlines()[-len(stages):]]


CLI = "import sys\nfrom adaptkit.cli import main\nsys.argv = ['adaptkit', {!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass"


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_load_no_torch(flag):
    assert loaded_after(CLI.format(flag)) == [set()]


def test_import_is_lazy_and_torchvision_waits_for_a_picture():
    assert loaded_after(
        "import adaptkit",
        "adaptkit.fit, adaptkit.sample_images, adaptkit.load_adapter\nimport adaptkit.images",
        "import torch\nfrom adaptkit.images import grid_image\ngrid_image(torch.zeros(1, 1, 4, 4))",
    ) == [set(), {"torch"}, {"torch", "torchvision"}]


def test_the_command_list_matches_the_commands():
    ctx = click.Context(cli)
    for name, (module, summary) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.callback.__module__ == f"adaptkit.cli.{module}"
        assert command.get_short_help_str(limit=10**6) == summary, name
    assert set(cli.commands) == set(COMMANDS)  # every command is listed


def test_every_public_name_resolves():
    import adaptkit

    missing = [name for name in adaptkit.__all__ if not hasattr(adaptkit, name)]
    assert missing == []
    with pytest.raises(AttributeError):
        adaptkit.no_such_name  # noqa: B018
