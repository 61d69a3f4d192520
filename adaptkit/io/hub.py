"""Adapters on the Hugging Face Hub: push a run or adapter folder, download a repo through the Hub cache.

Only adapter files travel: ``adapter_config.json``, ``adapter_model.safetensors``,
``latents.safetensors``, ``eval.json``, top-level PNGs, the model card and a small ``config.json``
(the file the Hub counts downloads by for a library without its own entry); never base weights or
training state. A push makes the repo (or branch) hold exactly these files: others are deleted in
the same commit. A pulled repo is listed first and refused if it holds pickles or names that escape
its folder; then only its top-level safetensors, JSON, images and README are downloaded. Nothing is
executed. huggingface_hub's progress bars stay off during these calls.

Settings are ``huggingface_hub``'s: ``HF_ENDPOINT``, ``HF_TOKEN`` or the login cache, the Hub
cache (``HF_HUB_CACHE``) and ``HF_HUB_OFFLINE=1`` (use the cache only). ``HF_ENDPOINT`` and
``HF_HUB_OFFLINE`` are read at each call.

No call waits forever: every request has a connect timeout (``ADAPTKIT_HUB_CONNECT_TIMEOUT``,
default 10 s) and a read timeout (``ADAPTKIT_HUB_READ_TIMEOUT``, default 30 s: the longest wait
for the next bytes of an answer, not for a whole download), and the reads of a pull (repo info,
downloads) are retried ``ADAPTKIT_HUB_RETRIES`` times (default 2, after 1 s, 2 s, …) when the
connection fails, times out, or the Hub answers 429 or 5xx. Pushes are not retried. A client
configured with ``huggingface_hub.set_client_factory`` keeps its own settings.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, TypeVar

import httpx2
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    constants,
    get_cached_repo_tree,
    get_token,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    CachedRepoTreeNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import disable_progress_bars
from huggingface_hub.utils import _http as hf_http
from torch import nn

from .._version import __version__
from ..errors import (
    AdaptkitError,
    CheckpointError,
    HubAuthError,
    HubConnectionError,
    HubError,
    HubNotFoundError,
    UnsafeRepoError,
    option,
)
from .atomic import atomic_path, clear_stale_stages, staged_folder
from .card import OTHER, build_card, is_generated_card, resolve_base_model
from .checkpoint import FORMAT, LIBRARY, check_base, read_adapter_config, read_adapter_tensors
from .folder_lock import folder_lock
from .os_errors import storage_errors
from .run_dir import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, check_folder_files, shared_files

DOWNLOAD_COUNTER = "config.json"
"""Generated on push: the Hub counts a model's downloads by requests for ``config.json`` unless the
repo's library is registered with its own query file (see docs/hub.md)."""
KEPT_ON_HUB = frozenset({".gitattributes"})
DOWNLOADED_SUFFIXES = (".safetensors", ".json", ".png", ".jpg", ".jpeg", ".webp", ".gif")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill", ".npy", ".npz")
T = TypeVar("T")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]*")  # no glob characters, no separators
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_OFFLINE_PUSH = "HF_HUB_OFFLINE is set: pushing needs the network (unset HF_HUB_OFFLINE)"
HUB_SETTINGS = {"ADAPTKIT_HUB_CONNECT_TIMEOUT": 10.0, "ADAPTKIT_HUB_READ_TIMEOUT": 30.0, "ADAPTKIT_HUB_RETRIES": 2}
"""Environment variables of the Hub calls' timeouts (seconds) and retries, with their defaults."""


def hub_setting(name: str) -> float:
    """The value of one of :data:`HUB_SETTINGS` (the environment's, read at each call)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return HUB_SETTINGS[name]
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0 or (name == "ADAPTKIT_HUB_RETRIES" and value != int(value)):
        kind = "a whole number ≥ 0" if name == "ADAPTKIT_HUB_RETRIES" else "a number of seconds > 0"
        raise HubError(f"{name}={raw!r} must be {kind}")
    if value == 0 and name != "ADAPTKIT_HUB_RETRIES":
        raise HubError(f"{name}=0: a timeout must be > 0 seconds")
    return value


def _timeout() -> httpx2.Timeout:
    return httpx2.Timeout(hub_setting("ADAPTKIT_HUB_READ_TIMEOUT"), connect=hub_setting("ADAPTKIT_HUB_CONNECT_TIMEOUT"))


def _client_with_timeouts() -> httpx2.Client:
    client = hf_http.default_client_factory()
    client.timeout = _timeout()
    return client


@contextmanager
def _timeouts() -> Iterator[None]:
    """Give the Hub client's requests adaptkit's timeouts for the block (unless the user set their
    own client factory)."""
    previous = getattr(hf_http, "_GLOBAL_CLIENT_FACTORY", None)
    if previous is not hf_http.default_client_factory:
        yield
        return
    hf_http.set_client_factory(_client_with_timeouts)
    try:
        yield
    finally:
        hf_http.set_client_factory(previous)


def _transient(exc: BaseException) -> bool:
    """Whether a failed read is worth retrying: no connection, a timeout, or HTTP 429/5xx."""
    exc = _root_cause(exc)
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return isinstance(exc, httpx2.TransportError)


def _read_with_retries(read: Callable[[], T]) -> T:
    """``read()`` (an idempotent Hub read), retried on transient failures (see the module's doc)."""
    retries = int(hub_setting("ADAPTKIT_HUB_RETRIES"))
    for attempt in range(retries + 1):
        try:
            return read()
        except Exception as exc:
            if attempt == retries or not _transient(exc):
                raise
            time.sleep(2 ** attempt)
    raise AssertionError("unreachable")


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")


def is_offline() -> bool:
    return constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def looks_like_repo_id(value: object) -> bool:
    """A ``str`` of the form ``user/name`` (the caller checks it is not a local folder first)."""
    return isinstance(value, str) and bool(_REPO_ID.fullmatch(value)) and ".." not in value


@dataclass(frozen=True)
class PushResult:
    url: str  # the repo's page (the branch's, with a revision)
    commit: str  # the new commit, or the unchanged head when nothing changed
    uploaded: list[str]  # files added or changed by this push
    deleted: list[str]  # files of an earlier push that this one does not have
    card: str  # "generated", "yours" (DIR's edited README.md) or "kept" (the Hub's edited card)
    unchanged: list[str] = field(default_factory=list)  # files the repo already held as they are

    @property
    def changed(self) -> bool:
        """False when the repo already held exactly these files (no commit was made)."""
        return bool(self.uploaded or self.deleted)


def download_counter(config: dict[str, Any], base_model: str | None) -> bytes:
    """The ``config.json`` a push adds: which library and adapter the repo holds (stable bytes, so an
    unchanged run pushes nothing)."""
    data = {"library_name": LIBRARY, "format": FORMAT, "adapter": config.get("adapter"),
            "adapter_config": CONFIG_NAME, "base_model": base_model}
    return (json.dumps(data, indent=2) + "\n").encode()


def _git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _same_content(content: bytes, remote: RepoFile) -> bool:
    """Whether the Hub's file holds ``content`` (by its LFS sha256, or its git blob id)."""
    if remote.lfs is not None:
        return hashlib.sha256(content).hexdigest() == remote.lfs.sha256
    return _git_blob_sha1(content) == remote.blob_id


@contextmanager
def quiet_hub() -> Iterator[None]:
    """huggingface_hub's own tqdm bars off (commands show rich progress; the library stays quiet)."""
    with disable_progress_bars():
        yield


def push_adapter(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    overwrite_card: bool = False,
    license: str = OTHER,
    license_name: str | None = None,
    license_link: str | None = None,
    base_model: str | None = None,
    datasets: list[str] | None = None,
    token: str | None = None,
) -> PushResult:
    """Make the model repo ``repo_id`` (created if needed) hold exactly the adapter in ``folder``, in
    one commit: its shared files, the model card and ``config.json``; files of an earlier push that
    ``folder`` lacks are deleted. Nothing is committed when the repo already holds these files.

    ``revision`` is a branch, created from ``main`` if needed. The card is generated, except that a
    ``README.md`` edited in ``folder`` is uploaded as is, and one edited on the Hub is kept; with
    ``overwrite_card`` it is always regenerated. ``license`` (``license_name``/``license_link`` for
    ``other``), ``base_model`` (the base's Hub id, when adaptkit cannot tell) and ``datasets`` go into
    the card's metadata. The folder is only written after a successful push (a generated card is
    saved there as ``README.md``, never over an edited one).
    """
    folder = Path(folder)
    config = read_adapter_config(folder)
    read_adapter_tensors(folder)  # a corrupt file never leaves the machine
    names = shared_files(folder)
    local_card = (folder / CARD_NAME).read_text(encoding="utf-8") if (folder / CARD_NAME).is_file() else None
    local_edited = local_card is not None and not is_generated_card(local_card)
    hub_base = resolve_base_model((config.get("base") or {}).get("id"), base_model)
    if local_edited and not overwrite_card:
        card, kind = local_card, "yours"
    else:
        card = build_card(folder, config, repo_id, images=[n for n in names if n.endswith(".png")],
                          revision=revision, license=license, license_name=license_name,
                          license_link=license_link, base_model=base_model, datasets=datasets)
        kind = "generated"
    endpoint = hub_endpoint()
    api = HfApi(endpoint=endpoint, token=token, library_name="adaptkit", library_version=__version__)
    if is_offline():
        raise HubConnectionError(_OFFLINE_PUSH)
    with hub_errors(repo_id, revision, token, pushing=True), quiet_hub():
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        remote = {f.path: f for f in api.list_repo_tree(repo_id, revision=revision, recursive=True)
                  if isinstance(f, RepoFile)}
        if CARD_NAME in remote and kind == "generated" and not overwrite_card:
            path = hf_hub_download(repo_id, CARD_NAME, revision=revision, endpoint=endpoint, token=token)
            hub_card = Path(path).read_text(encoding="utf-8")
            if hub_card != card and not is_generated_card(hub_card):
                card, kind = None, "kept"
        contents = {n: (folder / n).read_bytes() for n in names}
        contents[DOWNLOAD_COUNTER] = download_counter(config, hub_base)
        if card is not None:
            contents[CARD_NAME] = card.encode()
        unchanged = sorted(n for n, c in contents.items() if n in remote and _same_content(c, remote[n]))
        uploaded = [n for n in contents if n not in unchanged]
        keep = KEPT_ON_HUB | set(contents) | ({CARD_NAME} if kind == "kept" else set())
        stale = sorted(set(remote) - keep)
        operations = [CommitOperationAdd(n, contents[n]) for n in uploaded]
        operations += [CommitOperationDelete(n) for n in stale]
        if operations:
            message = commit_message or f"Upload {config.get('adapter', 'adapter')} adapter with adaptkit {__version__}"
            commit = api.create_commit(repo_id, operations, commit_message=message, revision=revision).oid
        else:
            commit = api.model_info(repo_id, revision=revision).sha
    if kind == "generated" and not local_edited:
        with atomic_path(folder / CARD_NAME) as tmp:
            tmp.write_text(card, encoding="utf-8")
    page = f"{url}/tree/{revision}" if revision else str(url)
    return PushResult(url=page, commit=commit, uploaded=uploaded, deleted=stale, card=kind, unchanged=unchanged)


def check_repo_files(repo_id: str, names: list[str]) -> list[str]:
    """Refuse a repo with pickles or unsafe names; return the top-level files worth downloading."""
    for name in names:
        parts = PurePosixPath(name).parts
        if name.startswith("/") or "\\" in name or ".." in parts or any(ord(c) < 32 for c in name):
            raise UnsafeRepoError(f"refusing {repo_id}: it contains a file name that escapes the folder ({name!r})")
    pickles = [n for n in names if n.lower().endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise UnsafeRepoError(
            f"refusing {repo_id}: it contains pickle files ({', '.join(pickles[:3])}), which can run code when "
            "loaded; adaptkit adapters are safetensors + JSON only"
        )
    missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if n not in names]
    if missing:
        raise CheckpointError(f"{repo_id} is not an adaptkit adapter: it has no {' or '.join(missing)}")
    return [n for n in names if _pulled_name(n)]


def download_adapter(repo_id: str, *, revision: str | None = None, token: str | None = None) -> Path:
    """The adapter of Hub repo ``repo_id`` as a folder in the Hub cache (the cache only, offline)."""
    endpoint = hub_endpoint()
    offline = is_offline()
    with hub_errors(repo_id, revision, token, pushing=False):
        timeout = hub_setting("ADAPTKIT_HUB_READ_TIMEOUT")
        if offline:
            names = [f.path for f in get_cached_repo_tree(repo_id, revision=revision)]
        else:
            api = HfApi(endpoint=endpoint, token=token)
            info = _read_with_retries(lambda: api.model_info(repo_id, revision=revision, timeout=timeout))
            names = [s.rfilename for s in info.siblings or []]
        wanted = check_repo_files(repo_id, names)
        with quiet_hub():
            folder = Path(_read_with_retries(lambda: snapshot_download(
                repo_id, revision=revision, allow_patterns=wanted, endpoint=endpoint, token=token,
                etag_timeout=timeout, local_files_only=offline, library_name="adaptkit",
                library_version=__version__,
            )))
    try:
        read_adapter_config(folder)
    except CheckpointError as exc:
        raise CheckpointError(f"{repo_id} is not a usable adaptkit adapter: {exc}") from None
    return folder


def pull_adapter(
    repo_id: str,
    *,
    revision: str | None = None,
    out: str | os.PathLike | None = None,
    model: nn.Module | None = None,
    token: str | None = None,
) -> Path:
    """Download ``repo_id``'s adapter and return the folder holding it: the Hub cache's, or ``out``
    (new, empty, or an adapter folder holding only files a pull writes). The download is checked
    (config valid, tensors readable and finite) and copied into a staging folder that replaces
    ``out`` as a whole, so ``out`` never mixes two adapters' files and a failed pull leaves it as it
    was. With ``model``, an adapter made for another base is refused before anything is written."""
    snapshot = download_adapter(repo_id, revision=revision, token=token)
    if model is not None:
        check_base(read_adapter_config(snapshot), model)
    if out is None:
        return snapshot
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{option('out', str(out))} exists and is not a folder")
    check_folder_files(snapshot)  # a truncated or non-finite download never replaces anything
    with folder_lock(out, f"adaptkit pull {repo_id}"):
        clear_stale_stages(out)
        _check_pull_target(out)
        with storage_errors(), staged_folder(out) as stage:
            for file in sorted(snapshot.iterdir()):
                if file.is_file():
                    shutil.copyfile(file, stage / file.name)
            check_folder_files(stage)
    return out


def _check_pull_target(out: Path) -> None:
    """``out`` must be missing, empty, or an adapter folder holding only files a pull writes (which
    the pull replaces as a whole, so two adapters' files never mix)."""
    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        read_adapter_config(out)
    except CheckpointError:
        raise CheckpointError(f"{out} is not empty and not an adapter folder: give a new or empty folder") from None
    foreign = sorted(p.name for p in out.iterdir() if not (p.is_file() and _pulled_name(p.name)))
    if foreign:
        raise CheckpointError(f"{out} holds files a pull does not write ({', '.join(foreign[:3])}): the pull would "
                              "replace them with the adapter; give a new or empty folder")


def _pulled_name(name: str) -> bool:
    """Whether ``name`` is a top-level file a pull downloads."""
    return bool(_PLAIN_NAME.fullmatch(name)) and (name.lower().endswith(DOWNLOADED_SUFFIXES) or name == CARD_NAME)


def _root_cause(exc: BaseException) -> BaseException:
    """The Hub client wraps an HTTP or network error in ``LocalEntryNotFoundError`` when it then
    finds nothing in the cache: the wrapped error says what went wrong."""
    while isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


@contextmanager
def hub_errors(repo_id: str, revision: str | None, token: str | None, *, pushing: bool) -> Iterator[None]:
    """Give the block's Hub calls adaptkit's timeouts; turn the Hub client's exceptions into
    one-line adaptkit errors."""
    try:
        with _timeouts():
            yield
    except AdaptkitError:
        raise
    except Exception as raw:
        exc = _root_cause(raw)
        endpoint = hub_endpoint()
        authed = bool(token or get_token())
        where = f"{repo_id}" + (f" (revision {revision})" if revision else "")
        offline_hint = "" if pushing else "; to use the copy in the Hub cache, set HF_HUB_OFFLINE=1"
        if isinstance(exc, GatedRepoError):
            error: Exception = HubAuthError(
                f"{repo_id} is gated: accept its conditions on the Hub, then log in (`hf auth login` or HF_TOKEN)"
            )
        elif isinstance(exc, RepositoryNotFoundError):
            hint = ("check the name; a private repo is only visible to tokens with access" if authed
                    else "check the name; if it is private, log in with `hf auth login` or set HF_TOKEN")
            error = HubNotFoundError(f"repo {repo_id} not found on {endpoint} ({hint})")
        elif isinstance(exc, RevisionNotFoundError):
            error = HubNotFoundError(f"revision {revision!r} not found in {repo_id} on {endpoint}")
        elif isinstance(exc, (OfflineModeIsEnabled, CachedRepoTreeNotFoundError, LocalEntryNotFoundError)):
            if pushing:
                error = HubConnectionError(_OFFLINE_PUSH)
            elif is_offline():
                error = HubConnectionError(
                    f"{where} is not in the Hub cache and HF_HUB_OFFLINE is set: pull it once while online"
                )
            else:
                error = HubConnectionError(f"cannot download {where} from {endpoint}: {exc}".splitlines()[0])
        elif isinstance(exc, HfHubHTTPError) and exc.response is not None:
            status = exc.response.status_code
            if status == 401:
                error = HubAuthError(
                    f"{endpoint} rejected your token (invalid or expired): log in again with `hf auth login` "
                    "or set HF_TOKEN" if authed else
                    f"{endpoint} needs a token for {repo_id}: log in with `hf auth login` or set HF_TOKEN"
                )
            elif status == 403:
                access = "write" if pushing else "read"
                error = HubAuthError(f"your token may not {access} {repo_id} on {endpoint} (it needs {access} access)")
            elif status >= 500:
                error = HubError(f"the Hub at {endpoint} failed (HTTP {status}) on {where}: try again later"
                                 + offline_hint)
            else:
                detail = exc.server_message or str(exc).strip().splitlines()[0]
                error = HubError(f"the Hub at {endpoint} refused the request on {where} (HTTP {status}: {detail})")
        elif isinstance(exc, ValueError) and str(exc).startswith("Invalid metadata in README.md"):
            detail = " ".join(str(exc).split())
            error = HubError(f"the Hub refused the model card's metadata (nothing was uploaded): {detail}")
        elif isinstance(exc, httpx2.TimeoutException):
            error = HubConnectionError(f"the Hub at {endpoint} did not answer in time on {where} "
                                       f"({type(exc).__name__}; the timeouts are set by ADAPTKIT_HUB_CONNECT_TIMEOUT "
                                       "and ADAPTKIT_HUB_READ_TIMEOUT)" + offline_hint)
        elif isinstance(exc, httpx2.TransportError):
            error = HubConnectionError(f"cannot reach the Hub at {endpoint} ({type(exc).__name__}: {exc})"
                                       + offline_hint)
        elif isinstance(exc, json.JSONDecodeError):
            error = HubError(f"{endpoint} answered {where} with something that is not the Hub's JSON (a web page or "
                             "a proxy's login page?): check HF_ENDPOINT")
        elif isinstance(exc, HFValidationError):
            error = HubError(f"{repo_id!r} is not a valid repo id (expected user/name): {exc}")
        else:
            raise
        raise error from raw
