"""A small Hugging Face Hub-compatible HTTP server for the tests (there is no internet here).

The real ``huggingface_hub`` client talks to it through its endpoint setting; nothing inside the client
is mocked. Checked against huggingface_hub 2.4.0. It speaks, for model repos only:

    POST /api/repos/create                          {name, organization, visibility} -> {url}; 409 if it exists
    POST /api/validate-yaml                         README metadata check -> {errors, warnings}
    POST /api/models/{repo}/branch/{branch}         {startingPoint?}; 409 if the branch exists
    POST /api/models/{repo}/preupload/{rev}         every file "regular" (never LFS/Xet), with the remote oid
    POST /api/models/{repo}/commit/{rev}            NDJSON: header, file (base64), deletedFile
    GET  /api/models/{repo}[/revision/{rev}]        repo info: id, sha, private, siblings
    GET  /api/models/{repo}/tree/{rev}[/{path}]     file listing (one page, files only)
    HEAD/GET /{repo}/resolve/{rev}/{path}           X-Repo-Commit, ETag (git blob sha1), Content-Length

Errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) and ``X-Error-Message``
as the Hub's do, which is how the client picks ``RepositoryNotFoundError`` and friends. Tokens come in
``Authorization: Bearer``; a private repo is visible to its owner only. ``hub.fail[kind] = status``
makes every request of that kind ("create", "branch", "preupload", "commit", "info", "tree",
"resolve") answer ``status``; ``hub.fail_next[kind] = [status, …]`` makes only the next ones do. ``hub.requests`` logs (method, path) of every request.
``hub.mode = "hang"`` makes it accept every request and never answer (until ``stop`` or the mode
changes); ``hub.mode = "html"`` answers every request 200 with an HTML page (a proxy's login page).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"  # what a new Hub repo starts with
REPO = r"(?P<repo>[^/]+/[^/]+)"
REV = r"(?P<rev>[^/]+)"
ROUTES = [  # (method, kind, pattern)
    ("POST", "create", re.compile(r"/api/repos/create")),
    ("POST", "validate", re.compile(r"/api/validate-yaml")),
    ("POST", "branch", re.compile(rf"/api/models/{REPO}/branch/{REV}")),
    ("POST", "preupload", re.compile(rf"/api/models/{REPO}/preupload/{REV}")),
    ("POST", "commit", re.compile(rf"/api/models/{REPO}/commit/{REV}")),
    ("GET", "tree", re.compile(rf"/api/models/{REPO}/tree/{REV}(?:/(?P<path>.*))?")),
    ("GET", "info", re.compile(rf"/api/models/{REPO}(?:/revision/{REV})?")),
    ("GET", "resolve", re.compile(rf"/{REPO}/resolve/{REV}/(?P<path>.+)")),
    ("HEAD", "resolve", re.compile(rf"/{REPO}/resolve/{REV}/(?P<path>.+)")),
]


def blob_oid(content: bytes) -> str:
    """The git blob sha1, which the Hub uses as a regular file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class HubReply(Exception):
    """An error answer: status, X-Error-Code, message."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.headers, self.extra = status, code, headers or {}, extra


@dataclass
class Repo:
    owner: str
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> {path: content}
    branches: dict[str, str] = field(default_factory=dict)

    def commit(self, branch: str, files: dict[str, bytes], message: str) -> str:
        parent = self.branches.get(branch, "")
        digest = hashlib.sha1(f"{parent}\n{message}\n{len(self.commits)}".encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + files[path])
        sha = digest.hexdigest()
        self.commits[sha] = dict(files)
        self.branches[branch] = sha
        return sha

    def resolve(self, rev: str) -> str:
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.commits:
            return rev
        raise HubReply(404, "Invalid rev id: " + rev, "RevisionNotFound")


class FakeHub:
    """The server's state plus the thread that serves it on an ephemeral 127.0.0.1 port."""

    def __init__(self, tokens: dict[str, tuple[str, bool]] | None = None):
        self.tokens = tokens or {}  # token -> (user, can_write)
        self.repos: dict[str, Repo] = {}
        self.fail: dict[str, int] = {}
        self.fail_next: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str]] = []
        self.mode: str | None = None  # None, "hang" or "html"
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "FakeHub":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def seed(self, repo_id: str, files: dict[str, bytes], *, branch: str = "main", private: bool = False) -> str:
        """Put ``files`` into a commit directly (also names the API would refuse); returns its sha."""
        with self.lock:
            repo = self.repos.setdefault(repo_id, Repo(repo_id.split("/")[0], private))
            return repo.commit(branch, files, "seed")

    def files(self, repo_id: str, rev: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo.commits[repo.resolve(rev)]

    # --- request handling -------------------------------------------------------------------------

    def user(self, headers) -> tuple[str, bool] | None:
        auth = headers.get("Authorization", "")
        if not auth:
            return None
        token = auth.removeprefix("Bearer ").strip()
        if token not in self.tokens:
            raise HubReply(401, "Invalid credentials in Authorization header")
        return self.tokens[token]

    def readable(self, repo_id: str, user) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and (user is None or user[0] != repo.owner)):
            raise HubReply(401 if user is None else 404, "Repository not found", "RepoNotFound")
        return repo

    def writable(self, repo_id: str, user) -> Repo:
        if user is None:
            raise HubReply(401, "You must be authenticated to access this resource")
        repo = self.readable(repo_id, user)
        if user[0] != repo.owner or not user[1]:
            raise HubReply(403, f"You don't have the rights to write to {repo_id}")
        return repo

    def handle(self, method: str, kind: str, match: re.Match, query: dict, body: bytes, headers, base: str):
        """Returns (status, headers, body bytes)."""
        user = self.user(headers)
        groups = {k: unquote(v) if v is not None else None for k, v in match.groupdict().items()}
        repo_id, rev = groups.get("repo"), groups.get("rev") or "main"
        if kind == "create":
            return self.create(json.loads(body), user, base)
        if kind == "validate":
            content = json.loads(body)["content"]
            block = re.match(r"^---\n(.*?)\n---\n", content, re.S)
            try:
                data = yaml.safe_load(block.group(1)) if block else {}
            except yaml.YAMLError as exc:
                return _json(400, {"errors": [{"message": str(exc)}], "warnings": []})
            ok = data is None or isinstance(data, dict)
            return _json(200 if ok else 400, {"errors": [] if ok else [{"message": "not a dict"}], "warnings": []})
        if kind == "branch":
            repo = self.writable(repo_id, user)
            if rev in repo.branches:
                raise HubReply(409, "Reference already exists")
            start = (json.loads(body) if body else {}).get("startingPoint") or "main"
            repo.branches[rev] = repo.resolve(start)
            return _json(200, {})
        if kind == "preupload":
            repo = self.writable(repo_id, user)
            current = repo.commits[repo.resolve(rev)]
            files = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                 "oid": blob_oid(current[f["path"]]) if f["path"] in current else None}
                for f in json.loads(body)["files"]
            ]
            return _json(200, {"files": files, "commitOid": repo.resolve(rev)})
        if kind == "commit":
            return self.commit(self.writable(repo_id, user), repo_id, rev, body, query, base)
        repo = self.readable(repo_id, user)
        sha = repo.resolve(rev)
        files = repo.commits[sha]
        if kind == "info":
            siblings = [{"rfilename": p} for p in sorted(files)]
            return _json(200, {"id": repo_id, "author": repo.owner, "sha": sha, "private": repo.private,
                               "gated": False, "disabled": False, "siblings": siblings})
        if kind == "tree":
            prefix = (groups.get("path") or "").strip("/")
            entries = [{"type": "file", "path": p, "size": len(c), "oid": blob_oid(c)}
                       for p, c in sorted(files.items()) if p.startswith(prefix)]
            return _json(200, entries)
        path = groups["path"]  # resolve
        if path not in files:
            raise HubReply(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
        content = files[path]
        return 200, {"X-Repo-Commit": sha, "ETag": f'"{blob_oid(content)}"',
                     "Content-Type": "application/octet-stream"}, content

    def create(self, payload: dict, user, base: str):
        if user is None:
            raise HubReply(401, "You must be authenticated to access this resource")
        owner = payload.get("organization") or user[0]
        repo_id = f"{owner}/{payload['name']}"
        if owner != user[0] or not user[1]:
            raise HubReply(403, f"You don't have the rights to create a model under the namespace {owner}")
        if repo_id in self.repos:
            raise HubReply(409, "You already created this model repo", url=f"{base}/{repo_id}")  # as the Hub does
        repo = self.repos[repo_id] = Repo(owner, payload.get("visibility") == "private")
        repo.commit("main", {".gitattributes": GITATTRIBUTES}, "initial commit")
        return _json(200, {"url": f"{base}/{repo_id}", "name": repo_id})

    def commit(self, repo: Repo, repo_id: str, rev: str, body: bytes, query: dict, base: str):
        if query.get("create_pr"):
            raise HubReply(400, "pull requests are not supported by this test server")
        if rev not in repo.branches:
            raise HubReply(404, "Invalid rev id: " + rev, "RevisionNotFound")
        files = dict(repo.commits[repo.branches[rev]])
        message = ""
        for line in body.decode().splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value["summary"]
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubReply(404, "A file with this name doesn't exist", "EntryNotFound")
            else:
                raise HubReply(400, f"unsupported commit operation {key!r} (this server never asks for LFS)")
        sha = repo.commit(rev, files, message)
        return _json(200, {"success": True, "commitOid": sha, "commitUrl": f"{base}/{repo_id}/commit/{sha}"})


def _json(status: int, data: Any):
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if hub.mode == "hang":
                while hub.mode == "hang" and not hub.released.wait(0.05):
                    pass
                self.close_connection = True
                return
            if hub.mode == "html":
                page = b"<!DOCTYPE html><html><body><h1>Sign in to the proxy</h1></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(page)
                return
            with hub.lock:
                hub.requests.append((method, url.path))
                try:
                    kind, match = next((k, m) for meth, k, rx in ROUTES
                                       if meth == method and (m := rx.fullmatch(url.path)))
                except StopIteration:
                    status, headers, data = 404, {"X-Error-Message": "unknown endpoint"}, b""
                else:
                    try:
                        if kind in hub.fail:
                            raise HubReply(hub.fail[kind], "injected failure")
                        if hub.fail_next.get(kind):
                            raise HubReply(hub.fail_next[kind].pop(0), "injected failure")
                        base = f"http://{self.headers['Host']}"
                        status, headers, data = hub.handle(method, kind, match, parse_qs(url.query), body,
                                                           self.headers, base)
                    except HubReply as reply:
                        status, data = reply.status, json.dumps({"error": str(reply), **reply.extra}).encode()
                        headers = {"X-Error-Message": str(reply), "Content-Type": "application/json", **reply.headers}
                        if reply.code:
                            headers["X-Error-Code"] = reply.code
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(name, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)

        def do_GET(self) -> None:
            self.dispatch("GET")

        def do_HEAD(self) -> None:
            self.dispatch("HEAD")

        def do_POST(self) -> None:
            self.dispatch("POST")

    return Handler
