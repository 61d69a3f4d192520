"""Bad input and faults, run for real: the command line in subprocesses (with timeouts) and the
library in this process, against tiny runs of the embedded digits32 base and the local Hub test
server (tests/hub_server.py). Each case says whether it printed a traceback, whether the data it
must not touch is intact, whether it hung, and whether it gave a silently wrong result.

    python benchmarks/bad_input.py [--jobs 2] [-k NAME] [--json benchmarks/results/bad_input.json]

Writes the JSON and, beside it, the table as Markdown (bad_input.md).

Exits non-zero unless every case passes (0 tracebacks, 0 data lost, 0 hangs, 0 silent wrong results).
"""
from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the local Hub test server

from hub_server import FakeHub  # noqa: E402
from huggingface_hub import constants  # noqa: E402
from huggingface_hub.utils import disable_progress_bars  # noqa: E402

import adaptkit  # noqa: E402
from adaptkit import AdaptkitError  # noqa: E402
from adaptkit.bases import load_base  # noqa: E402
from adaptkit.data import load_image_folder  # noqa: E402
from adaptkit.demo import write_demo_set  # noqa: E402
from adaptkit.io.atomic import atomic_path, write_json  # noqa: E402
from adaptkit.io.run_dir import load_run  # noqa: E402
from adaptkit.train import FitConfig, fit  # noqa: E402

CLI_TIMEOUT = 120  # seconds before a command counts as hung
FIT = ["--base", "digits32", "--steps", "2", "--samples", "8", "--quiet"]
RAISING_BASE = "def broken():\n    raise RuntimeError('no weights in /nowhere')\n"


@dataclass
class Outcome:
    case: str
    kind: str  # "cli" or "library"
    outcome: str  # the error line, or what succeeded
    traceback: bool
    intact: bool
    hang: bool
    wrong: bool  # a silently wrong result: bad input accepted, or a wrong answer

    @property
    def passed(self) -> bool:
        return not (self.traceback or not self.intact or self.hang or self.wrong)


def digest(*folders: Path) -> dict[str, str]:
    """The files under ``folders`` (sha256 of each), to tell whether a case touched them."""
    found = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


class Workspace:
    """A temporary folder with demo images, one good digits32 run (copied per case), the Hub test
    server holding it as the repo alice/good (and an adapter folder pulled from it), and two test
    servers that never answer and answer HTML."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = write_demo_set(root / "data", n=8)
        fit(FitConfig(data=str(self.data), out=str(root / "good"), base="digits32", steps=2, samples=8, quiet=True))
        self.good = root / "good"
        (root / "corpus_bases.py").write_text(RAISING_BASE)
        self.hub = FakeHub({"alice": ("alice", True)}).start()
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(root)]), "OMP_NUM_THREADS": "1",
                    "HF_ENDPOINT": self.hub.url, "HF_TOKEN": "alice", "HF_HUB_CACHE": str(root / "hub-cache"),
                    "ADAPTKIT_HUB_READ_TIMEOUT": "2", "ADAPTKIT_HUB_RETRIES": "1", "NO_COLOR": "1"}
        self.adapter_files = {n: (self.good / n).read_bytes() for n in
                              ("adapter_config.json", "adapter_model.safetensors", "latents.safetensors",
                               "samples.png")}
        self.hub.seed("alice/good", self.adapter_files)
        self.hang_hub, self.html_hub = FakeHub().start(), FakeHub().start()
        self.hang_hub.mode, self.html_hub.mode = "hang", "html"
        constants.HF_HUB_CACHE = str(root / "hub-cache")  # the library's pulls too: never the user's cache
        self.hub_snapshot = with_env({"HF_ENDPOINT": self.hub.url},
                                     lambda: adaptkit.pull_adapter("alice/good", out=root / "snapshot"))

    def stop(self) -> None:
        for server in (self.hub, self.hang_hub, self.html_hub):
            server.stop()

    def case_dir(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix="case-", dir=self.root))

    def copy_run(self, where: Path, name: str = "run") -> Path:
        return Path(shutil.copytree(self.good, where / name))


def cli(ws: Workspace, args: list[Any], cwd: Path, *, env: dict[str, str] | None = None
        ) -> tuple[int | None, str, str]:
    """``adaptkit ARGS`` in a subprocess: (exit code or None when it hung, stdout, stderr)."""
    process = subprocess.Popen([sys.executable, "-m", "adaptkit", *map(str, args)], cwd=cwd, env=env or ws.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=CLI_TIMEOUT)
        return process.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        return None, out, err


def error_line(stderr: str) -> str | None:
    """The one ``error: …`` line a failed command ends with, else None."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines and lines[-1].startswith("error: ") else None


# --- case kinds ---------------------------------------------------------------------------------------

Case = Callable[[Workspace], Outcome]
CASES: list[tuple[str, str, Case]] = []


def cli_case(name: str, *, refuse: str | None = None, protect: Callable[[Path], list[Path]] = lambda d: [],
             check: Callable[[Path], bool] | None = None):
    """A command-line case: ``make(ws, folder)`` prepares the folder and returns the arguments (an
    ``env.json`` it writes there is the command's environment; a ``holder.pid`` names a process to
    kill afterwards). ``refuse``: the text the one error line must hold, else the command must
    succeed. ``check(folder)``: what must hold afterwards either way. ``protect``: folders the
    command must leave as they were."""
    def register(make: Callable[[Workspace, Path], list[Any]]) -> Callable:
        def run(ws: Workspace) -> Outcome:
            folder = ws.case_dir(name)
            args = make(ws, folder)
            env = json.loads((folder / "env.json").read_text()) if (folder / "env.json").exists() else None
            before = digest(*protect(folder))
            try:
                code, out, err = cli(ws, args, folder, env=env)
            finally:
                if (folder / "holder.pid").exists():
                    os.kill(int((folder / "holder.pid").read_text()), signal.SIGKILL)
            intact = digest(*protect(folder)) == before
            line = error_line(err)
            if code is None:
                return Outcome(name, "cli", "hung", "Traceback" in out + err, intact, True, False)
            if refuse is not None:
                wrong = code == 0 or line is None or refuse not in line
                shown = line or f"exit {code}: {(err.strip().splitlines() or [''])[-1]}"
            else:
                wrong = code != 0
                shown = "ok" if code == 0 else (line or f"exit {code}")
            if check is not None and not check(folder):
                wrong, shown = True, shown + " (check failed)"
            return Outcome(name, "cli", shown, "Traceback" in out + err, intact, False, wrong)
        CASES.append((name, "cli", run))
        return make
    return register


def library_case(name: str, *, refuse: type[Exception] | None = AdaptkitError, match: str = "",
                 timeout: float = 60):
    """A library case: ``act(ws, folder)`` returns (protected folders, a callable to run). With
    ``refuse`` the call must raise it (an ``AdaptkitError``) with ``match`` in its message; with
    None it must succeed and return True (a correct result)."""
    def register(act: Callable[[Workspace, Path], tuple[list[Path], Callable[[], Any]]]) -> Callable:
        def run(ws: Workspace) -> Outcome:
            folder = ws.case_dir(name)
            protected, call = act(ws, folder)
            before = digest(*protected)
            box: dict[str, Any] = {}

            def target() -> None:
                try:
                    box["result"] = call()
                except BaseException as exc:  # noqa: BLE001 (the corpus records whatever is raised)
                    box["error"] = exc

            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            thread.join(timeout)
            intact = digest(*protected) == before
            if thread.is_alive():
                return Outcome(name, "library", "hung", False, intact, True, False)
            exc = box.get("error")
            stray = exc is not None and not isinstance(exc, AdaptkitError)
            if refuse is not None:
                wrong = exc is None or not isinstance(exc, refuse) or match not in str(exc)
                shown = f"{type(exc).__name__}: {exc}" if exc is not None else f"returned {box.get('result')!r}"
            else:
                wrong = exc is not None or box.get("result") is not True
                shown = "ok" if not wrong else (f"{type(exc).__name__}: {exc}" if exc else "wrong result")
            return Outcome(name, "library", shown.splitlines()[0], stray, intact, False, wrong)
        CASES.append((name, "library", run))
        return act
    return register


def run_of(folder: Path) -> list[Path]:
    return [folder / "run"]


def edit_config(run: Path, change: Callable[[dict], None]) -> None:
    config = json.loads((run / "adapter_config.json").read_text())
    change(config)
    (run / "adapter_config.json").write_text(json.dumps(config))


def edit_tensors(file: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    tensors = load_file(str(file))
    change(tensors)
    save_file(tensors, str(file))


def nan_adapter(tensors: dict[str, torch.Tensor]) -> None:
    for name in tensors:
        tensors[name] = torch.full_like(tensors[name], float("nan"))


def truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def no_checkpoint(run: Path) -> bool:
    """The run diverged at step 2: the step-1 checkpoint held the values that gave NaN, so it must be gone."""
    return not list((run / "checkpoints").glob("step-*"))


# --- fit on the command line ----------------------------------------------------------------------------


@cli_case("fit --overwrite, bad adapter option", refuse="option reg_weight of the bsa adapter must be a number",
          protect=run_of)
def _(ws, d):
    run = ws.copy_run(d)
    return ["fit", "--data", ws.data, "--out", run, *FIT, "--overwrite", "--adapter-option", "reg_weight=abc"]


@cli_case("fit --overwrite, diverging (--lr-adapter 1e9)", refuse="previous run in", protect=run_of)
def _(ws, d):
    run = ws.copy_run(d)
    return ["fit", "--data", ws.data, "--out", run, *FIT, "--steps", "6", "--overwrite", "--lr-adapter", "1e9"]


@cli_case("fit diverging (--lr-adapter 1e9, --checkpoint-every 1): no diverged checkpoint kept",
          refuse="training stopped and no good checkpoint", check=lambda d: no_checkpoint(d / "run"))
def _(ws, d):
    return ["fit", "--data", ws.data, "--out", d / "run", *FIT, "--steps", "6", "--lr-adapter", "1e9",
            "--checkpoint-every", "1"]


@cli_case("fit into a non-empty folder without --overwrite", refuse="is not empty", protect=run_of)
def _(ws, d):
    return ["fit", "--data", ws.data, "--out", ws.copy_run(d), *FIT]


@cli_case("fit, --data missing", refuse="does not exist")
def _(ws, d):
    return ["fit", "--data", d / "missing", "--out", d / "run", *FIT]


@cli_case("fit, --data empty", refuse="no images")
def _(ws, d):
    (d / "empty").mkdir()
    return ["fit", "--data", d / "empty", "--out", d / "run", *FIT]


@cli_case("fit, --data only corrupt PNGs", refuse="")
def _(ws, d):
    (d / "bad").mkdir()
    for i in range(3):
        (d / "bad" / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    return ["fit", "--data", d / "bad", "--out", d / "run", *FIT]


@cli_case("fit, a FIFO named x.png in --data (skipped)", check=lambda d: (d / "run" / "summary.json").exists())
def _(ws, d):
    data = Path(shutil.copytree(ws.data, d / "data"))
    os.mkfifo(data / "x.png")
    return ["fit", "--data", data, "--out", d / "run", *FIT]


@cli_case("fit, --steps 0", refuse="--steps")
def _(ws, d):
    return ["fit", "--data", ws.data, "--out", d / "run", *FIT, "--steps", "0"]


@cli_case("fit, unknown --adapter", refuse="nope")
def _(ws, d):
    return ["fit", "--data", ws.data, "--out", d / "run", *FIT, "--adapter", "nope"]


@cli_case("fit, unknown adapter option", refuse="unknown option(s) nope")
def _(ws, d):
    return ["fit", "--data", ws.data, "--out", d / "run", *FIT, "--adapter-option", "nope=1"]


@cli_case("fit --resume with no checkpoint", refuse="nothing to resume")
def _(ws, d):
    (d / "run").mkdir()
    return ["fit", "--out", d / "run", "--resume"]


@cli_case("fit --out under a file", refuse="is a file, not a folder")
def _(ws, d):
    (d / "file").write_text("x")
    return ["fit", "--data", ws.data, "--out", d / "file" / "run", *FIT]


@cli_case("fit, python: base whose factory raises", refuse="its factory raised RuntimeError")
def _(ws, d):
    return ["fit", "--data", ws.data, "--out", d / "run", *FIT, "--base", "python:corpus_bases:broken"]


# --- sample, interpolate, eval -------------------------------------------------------------------------


@cli_case("sample --out onto the run's adapter file", refuse="would overwrite adapter_model.safetensors",
          protect=run_of)
def _(ws, d):
    run = ws.copy_run(d)
    return ["sample", run, "--out", run / "adapter_model.safetensors", "-n", "2"]


@cli_case("eval --json onto the run's adapter config", refuse="would overwrite adapter_config.json", protect=run_of)
def _(ws, d):
    run = ws.copy_run(d)
    return ["eval", run, "--real", ws.data, "--json", run / "adapter_config.json"]


@cli_case("sample, adapter full of NaN", refuse="holds NaN or infinite values", protect=run_of)
def _(ws, d):
    run = ws.copy_run(d)
    edit_tensors(run / "adapter_model.safetensors", nan_adapter)
    return ["sample", run, "--out", d / "s.png", "-n", "2"]


@cli_case("sample, adapter config without 'base'", refuse="field 'base' is missing", protect=run_of)
def _(ws, d):
    run = ws.copy_run(d)
    edit_config(run, lambda c: c.pop("base"))
    return ["sample", run, "--out", d / "s.png", "-n", "2"]


@cli_case("sample, adapter config 'targets' of the wrong type", refuse="field 'targets' must be a list",
          protect=run_of)
def _(ws, d):
    run = ws.copy_run(d)
    edit_config(run, lambda c: c.update(targets="all"))
    return ["sample", run, "--out", d / "s.png", "-n", "2"]


@cli_case("sample, truncated adapter safetensors", refuse="is corrupt or truncated", protect=run_of)
def _(ws, d):
    run = ws.copy_run(d)
    truncate(run / "adapter_model.safetensors")
    return ["sample", run, "--out", d / "s.png", "-n", "2"]


@cli_case("interpolate, latents of the wrong shape", refuse="tensor 'latents' must be floats of shape",
          protect=run_of)
def _(ws, d):
    run = ws.copy_run(d)
    edit_tensors(run / "latents.safetensors", lambda t: t.update(latents=t["latents"][:, :3].contiguous()))
    return ["interpolate", run, "--out", d / "i.png"]


@cli_case("interpolate, class ids out of range", refuse="out of range", protect=run_of)
def _(ws, d):
    run = ws.copy_run(d)
    edit_tensors(run / "latents.safetensors", lambda t: t.update(labels=t["labels"] + 100))
    return ["interpolate", run, "--out", d / "i.png"]


@cli_case("sample -n 0", refuse="-n")
def _(ws, d):
    return ["sample", ws.copy_run(d), "-n", "0"]


@cli_case("sample into a run another process writes", refuse="is being written by", protect=run_of)
def _(ws, d):
    run = ws.copy_run(d)
    holder = subprocess.Popen(  # a writer holding the run's lock (as folder_lock does), until the case ends
        [sys.executable, "-c", "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(300)", str(d / ".run.lock")],
        stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    (d / "holder.pid").write_text(str(holder.pid))
    return ["sample", run, "-n", "2"]


# --- the Hub ---------------------------------------------------------------------------------------------


def seeded(ws: Workspace, repo: str, change: Callable[[dict[str, bytes]], None]) -> str:
    files = dict(ws.adapter_files)
    change(files)
    ws.hub.seed(repo, files)
    return repo


@cli_case("pull a repo that does not exist", refuse="not found")
def _(ws, d):
    return ["pull", "alice/none"]


@cli_case("pull a truncated adapter into an adapter folder", refuse="is corrupt or truncated",
          protect=lambda d: [d / "adapter"])
def _(ws, d):
    shutil.copytree(ws.hub_snapshot, d / "adapter")
    weights = ws.adapter_files["adapter_model.safetensors"]
    repo = seeded(ws, "alice/cut", lambda f: f.update({"adapter_model.safetensors": weights[: len(weights) // 2]}))
    return ["pull", repo, "--out", d / "adapter"]


@cli_case("pull a NaN adapter into an adapter folder", refuse="holds NaN or infinite values",
          protect=lambda d: [d / "adapter"])
def _(ws, d):
    shutil.copytree(ws.hub_snapshot, d / "adapter")
    file = d / "nan.safetensors"
    file.write_bytes(ws.adapter_files["adapter_model.safetensors"])
    edit_tensors(file, nan_adapter)
    repo = seeded(ws, "alice/nan", lambda f: f.update({"adapter_model.safetensors": file.read_bytes()}))
    return ["pull", repo, "--out", d / "adapter"]


@cli_case("pull a repo without latents into an adapter folder (no mixing)",
          check=lambda d: not (d / "adapter" / "latents.safetensors").exists()
          and not (d / "adapter" / "samples.png").exists())
def _(ws, d):
    shutil.copytree(ws.hub_snapshot, d / "adapter")
    repo = seeded(ws, "alice/bare", lambda f: [f.pop("latents.safetensors"), f.pop("samples.png")])
    return ["pull", repo, "--out", d / "adapter"]


@cli_case("pull into a fit run folder", refuse="holds files a pull does not write", protect=run_of)
def _(ws, d):
    return ["pull", "alice/good", "--out", ws.copy_run(d)]


@cli_case("pull into a folder of other files", refuse="is not empty and not an adapter folder",
          protect=lambda d: [d / "thesis"])
def _(ws, d):
    (d / "thesis").mkdir()
    (d / "thesis" / "thesis.tex").write_text("years of work")
    return ["pull", "alice/good", "--out", d / "thesis"]


@cli_case("pull a repo holding a pickle", refuse="contains pickle files")
def _(ws, d):
    return ["pull", seeded(ws, "alice/pickle", lambda f: f.update({"model.bin": b"pickle"}))]


@cli_case("pull from a Hub that never answers", refuse="did not answer in time")
def _(ws, d):
    (d / "env.json").write_text(json.dumps({**ws.env, "HF_ENDPOINT": ws.hang_hub.url}))
    return ["pull", "alice/good"]


@cli_case("pull from a server answering 200 with HTML", refuse="is not the Hub's JSON")
def _(ws, d):
    (d / "env.json").write_text(json.dumps({**ws.env, "HF_ENDPOINT": ws.html_hub.url}))
    return ["pull", "alice/good"]


@cli_case("pull with an invalid ADAPTKIT_HUB_READ_TIMEOUT", refuse="ADAPTKIT_HUB_READ_TIMEOUT=")
def _(ws, d):
    (d / "env.json").write_text(json.dumps({**ws.env, "ADAPTKIT_HUB_READ_TIMEOUT": "soon"}))
    return ["pull", "alice/good"]


@cli_case("push a folder that is not an adapter", refuse="is not an adapter folder")
def _(ws, d):
    (d / "x").mkdir()
    return ["push", d / "x", "alice/x"]


# --- the library ------------------------------------------------------------------------------------------


def loading(edit: Callable[[Path], None]) -> Callable[[Workspace, Path], tuple[list[Path], Callable]]:
    def act(ws: Workspace, d: Path):
        run = ws.copy_run(d)
        edit(run)
        return [run], lambda: load_run(run)
    return act


library_case("load_run, config without 'base'", refuse=adaptkit.InvalidCheckpointError, match="'base' is missing")(
    loading(lambda run: edit_config(run, lambda c: c.pop("base"))))
library_case("load_run, config 'call' with unknown keys", refuse=adaptkit.InvalidCheckpointError,
             match="unknown keys")(loading(lambda run: edit_config(run, lambda c: c["call"].update(bogus=1))))
library_case("load_run, config not JSON", refuse=adaptkit.CheckpointError, match="not valid JSON")(
    loading(lambda run: (run / "adapter_config.json").write_text("{oops")))
library_case("load_run, adapter full of inf", refuse=adaptkit.InvalidCheckpointError, match="NaN or infinite")(
    loading(lambda run: edit_tensors(run / "adapter_model.safetensors",
                                     lambda t: t.update({k: v * float("inf") for k, v in t.items()}))))
library_case("load_run, truncated latents", refuse=adaptkit.CheckpointError, match="corrupt or truncated")(
    loading(lambda run: truncate(run / "latents.safetensors")))
library_case("load_run, NaN latents", refuse=adaptkit.InvalidCheckpointError, match="'latents' holds NaN")(
    loading(lambda run: edit_tensors(run / "latents.safetensors",
                                     lambda t: t.update(latents=t["latents"] * float("nan")))))
library_case("load_run, labels of the wrong dtype", refuse=adaptkit.InvalidCheckpointError, match="int64")(
    loading(lambda run: edit_tensors(run / "latents.safetensors", lambda t: t.update(labels=t["labels"].float()))))


@library_case("attach_adapter, reg_weight='abc'", refuse=adaptkit.AdapterConfigError, match="must be a number")
def _(ws, d):
    return [], lambda: adaptkit.attach_adapter(load_base("digits32").generator, "bsa", reg_weight="abc")


@library_case("attach_adapter, adapt_first_linear=1", refuse=adaptkit.AdapterConfigError, match="true or false")
def _(ws, d):
    return [], lambda: adaptkit.attach_adapter(load_base("digits32").generator, "bsa", adapt_first_linear=1)


def saving(prepare: Callable[[Any], None], patch: Callable[[], Callable[[], None]] | None = None):
    """save_adapter into a copy of the good run, after ``prepare(handle)``, with ``patch`` in force."""
    def act(ws: Workspace, d: Path):
        run = ws.copy_run(d)
        loaded = load_run(run)
        prepare(loaded.handle)

        def call():
            undo = patch() if patch else (lambda: None)
            try:
                adaptkit.save_adapter(loaded.handle, run)
            finally:
                undo()
        return [run], call
    return act


def nan_params(handle) -> None:
    with torch.no_grad():
        next(iter(handle.parameters())).fill_(float("nan"))


_PATCHING = threading.Lock()  # cases that patch a module run one at a time


def failing_os(module: Any, name: str, code: int) -> Callable[[], Callable[[], None]]:
    """A patch making ``module.name`` raise ``OSError(code)``; returns the undo."""
    def patch() -> Callable[[], None]:
        _PATCHING.acquire()
        original = getattr(module, name)

        def fail(*args, **kwargs):
            path = next((str(a) for a in args if isinstance(a, (str, os.PathLike))), None)
            raise OSError(code, os.strerror(code), path)
        setattr(module, name, fail)

        def undo() -> None:
            setattr(module, name, original)
            _PATCHING.release()
        return undo
    return patch


import adaptkit.io.checkpoint as checkpoint_module  # noqa: E402
import adaptkit.train.loop as loop_module  # noqa: E402

library_case("save_adapter of NaN values over a run", refuse=adaptkit.InvalidCheckpointError, match="NaN")(
    saving(nan_params))
library_case("save_adapter on a full disk", refuse=adaptkit.DiskFullError, match="the disk is full")(
    saving(lambda h: None, failing_os(checkpoint_module, "write_json", errno.ENOSPC)))
library_case("save_adapter without permission", refuse=adaptkit.FilePermissionError, match="permission denied")(
    saving(lambda h: None, failing_os(checkpoint_module, "save_file", errno.EACCES)))


def fitting(patch: Callable[[], Callable[[], None]] | None, overwrite: bool = True):
    def act(ws: Workspace, d: Path):
        run = ws.copy_run(d)
        config = FitConfig(data=str(ws.data), out=str(run), base="digits32", steps=2, samples=8, quiet=True,
                           overwrite=overwrite)

        def call():
            undo = patch() if patch else (lambda: None)
            try:
                fit(config)
            finally:
                undo()
        return [run], call
    return act


library_case("fit --overwrite, disk full while writing the run", refuse=adaptkit.DiskFullError,
             match="the disk is full")(fitting(failing_os(loop_module, "save_latents", errno.ENOSPC)))
library_case("fit --overwrite, permission denied on checkpoints", refuse=adaptkit.FilePermissionError,
             match="permission denied")(fitting(failing_os(loop_module, "save_checkpoint", errno.EACCES)))


@library_case("fit --resume from a NaN checkpoint", refuse=adaptkit.InvalidCheckpointError, match="holds NaN")
def _(ws, d):
    run = ws.copy_run(d)
    for file in (run / "checkpoints").glob("*.safetensors"):
        edit_tensors(file, lambda t: t.update({k: v * float("nan") for k, v in t.items()
                                               if k.startswith("adapter/")}))
    return [run], lambda: fit(adaptkit.resume_config(run, steps=4))


@library_case("load_base, python: factory raising", refuse=adaptkit.BaseFactoryError, match="factory raised")
def _(ws, d):
    sys.path.insert(0, str(ws.root))
    return [], lambda: load_base("python:corpus_bases:broken")


@library_case("16-bit PNG mid-grey reads as mid-grey", refuse=None)
def _(ws, d):
    (d / "img").mkdir()
    Image.fromarray(np.full((32, 32), 32768, dtype=np.uint16)).save(d / "img" / "grey16.png")

    def call():
        value = load_image_folder(d / "img", channels=1, resolution=32).images.mean().item()
        return abs(value) < 0.01
    return [], call


@library_case("image folder with a FIFO named fifo.png (skipped, no hang)", refuse=None, timeout=30)
def _(ws, d):
    data = Path(shutil.copytree(ws.data, d / "data"))
    os.mkfifo(data / "0" / "fifo.png")

    def call():
        images = load_image_folder(data, channels=1, resolution=32)
        return len(images) == 8 and any("fifo.png" in str(p) for p, _ in images.skipped)
    return [], call


@library_case("pull_adapter from a server answering HTML", refuse=adaptkit.HubError, match="not the Hub's JSON")
def _(ws, d):
    return [], lambda: with_env({"HF_ENDPOINT": ws.html_hub.url}, lambda: adaptkit.pull_adapter("alice/good"))


@library_case("load_adapter, Hub repo id that never answers", refuse=adaptkit.HubConnectionError,
              match="did not answer in time", timeout=60)
def _(ws, d):
    return [], lambda: with_env({"HF_ENDPOINT": ws.hang_hub.url, "ADAPTKIT_HUB_READ_TIMEOUT": "1",
                                 "ADAPTKIT_HUB_RETRIES": "0"},
                                lambda: adaptkit.load_adapter(load_base("digits32").generator, "alice/good"))


_ENV_LOCK = threading.Lock()


def with_env(changes: dict[str, str], call: Callable[[], Any]) -> Any:
    """``call()`` with environment variables changed (one such call at a time)."""
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in changes}
        os.environ.update(changes)
        try:
            return call()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


# --- running ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once")
    parser.add_argument("-k", dest="only", default="", help="run only the cases whose name contains this, or of this kind (cli, library)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "bad_input.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    disable_progress_bars()
    console = Console(highlight=False, width=max(Console().width, 180))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="adaptkit-bad-input-") as tmp:
        with console.status("making the good run and starting the Hub test servers"):
            ws = Workspace(Path(tmp))
        cases = [case for name, kind, case in CASES if args.only in name or args.only == kind]
        outcomes: list[Outcome] = []
        with console.status(f"running {len(cases)} cases") as status, ThreadPoolExecutor(args.jobs) as pool:
            for outcome in pool.map(lambda case: case(ws), cases):
                outcome.outcome = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:PORT",
                                         outcome.outcome.replace(tmp, "$TMP"))
                outcomes.append(outcome)
                status.update(f"running {len(cases)} cases: {len(outcomes)} done")
        ws.stop()
    seconds = time.perf_counter() - started
    report(console, outcomes, seconds, args.json)
    sys.exit(0 if all(o.passed for o in outcomes) else 1)


def report(console: Console, outcomes: list[Outcome], seconds: float, path: Path) -> None:
    table = Table(title=f"{len(outcomes)} bad-input and fault cases ({seconds:.0f} s)")
    for column in ("case", "kind", "outcome", "traceback", "data intact", "hang", "silent wrong", "pass"):
        table.add_column(column, overflow="fold", max_width=70 if column == "outcome" else None)
    yes = {True: "yes", False: "no"}
    for o in outcomes:
        table.add_row(o.case, o.kind, o.outcome[:110], yes[o.traceback], yes[o.intact], yes[o.hang], yes[o.wrong],
                      "✓" if o.passed else "✗")
    console.print(table)
    totals = {"cases": len(outcomes), "tracebacks": sum(o.traceback for o in outcomes),
              "data_lost": sum(not o.intact for o in outcomes), "hangs": sum(o.hang for o in outcomes),
              "silent_wrong": sum(o.wrong for o in outcomes), "passed": sum(o.passed for o in outcomes)}
    summary = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in totals.items())
    console.print(summary)
    write_json(path, {"command": "python benchmarks/bad_input.py", "seconds": round(seconds, 1), "totals": totals,
                      "cases": [asdict(o) for o in outcomes]})
    rows = ["| case | kind | outcome | traceback | data intact | hang | silent wrong |", "|---|---|---|---|---|---|---|"]
    rows += [f"| {o.case} | {o.kind} | {o.outcome[:140].replace('|', '/')} | {yes[o.traceback]} | {yes[o.intact]} | "
             f"{yes[o.hang]} | {yes[o.wrong]} |" for o in outcomes]
    rows.append(f"\n{summary}; {seconds:.0f} s.")
    with atomic_path(path.with_suffix(".md")) as tmp:
        tmp.write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
