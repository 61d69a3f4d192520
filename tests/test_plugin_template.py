"""The example plugin installs like any third-party package and is found through its entry point."""
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_template_plugin_installs_and_attaches(tmp_path):
    target = tmp_path / "site"
    source = shutil.copytree(ROOT / "examples" / "plugin_template", tmp_path / "src")  # builds leave files
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True,
    )
    script = textwrap.dedent(
        """
        import sys, torch
        sys.path.insert(0, "tests")
        import adaptkit
        from models import tiny_cond_generator
        rows = {r.name: r for r in adaptkit.list_adapters()}
        assert rows["shift"].distribution == "adaptkit-shift" and rows["shift"].version == "0.1.0", rows
        g = tiny_cond_generator(); z = torch.randn(2, 16); y = torch.tensor([0, 1])
        before = g(z, y)
        h = adaptkit.attach_adapter(g, "shift")
        assert torch.equal(g(z, y), before)
        with torch.no_grad():
            next(h.parameters()).add_(1.0)
        assert not torch.equal(g(z, y), before)
        print("ok", h.num_parameters())
        """
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok 64"
    listing = subprocess.run(
        [sys.executable, "-m", "adaptkit", "adapters"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert "shift" in listing.stdout and "adaptkit-shift" in listing.stdout
