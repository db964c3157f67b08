"""A Hugging Face Hub on loopback: serves folders of stand-in repos, and the chapter's images, over plain HTTP.

    python tools/loopback_hub.py [FOLDER]   # FOLDER/<owner>/<name>/...; default: the tiny stand-ins (built once)

It prints `HF_ENDPOINT=http://127.0.0.1:PORT` and serves until stopped; point HF_ENDPOINT and MMLAB_IMAGE_BASE_URL
at it and hub mode runs without the internet. It answers what huggingface_hub (1.x and 2.x) asks when
`from_pretrained`, `SentenceTransformer(...)`, `hf_hub_download` and `snapshot_download` fetch a repo, as read in
its file_download.py, hf_api.py and utils/_http.py:

- HEAD/GET `/{repo}/resolve/{revision}/{path}`: `X-Repo-Commit`, `ETag` (the git blob id, quoted),
  `Content-Length`; large files (LFS on the real Hub) answer 302 with `Location` on this server's `/lfs/` route
  under the name `localhost` (a host other than HF_ENDPOINT's, as the Hub's CDN is),
  `X-Linked-Etag` (their sha256) and `X-Linked-Size`. GET honours `Range: bytes=N-[M]` (resumed downloads, safetensors header reads).
- GET `/api/models/{repo}` and `/api/models/{repo}/revision/{revision}`: id, sha, siblings.
- GET `/api/models/{repo}/tree/{revision}[/{path}]` (`?recursive=true`): files with oid, size and lfs.
- A missing file: 404 with `X-Error-Code: EntryNotFound`; an unknown repo: 401 with `X-Error-Code: RepoNotFound`
  (what the real Hub answers anonymous callers); an unknown revision: 404 `RevisionNotFound`.
- The chapter's images at their own URL paths (mmlab.data.images): the book's puppy, cat and car (stand-ins:
  scikit-image photographs at the real files' sizes) and the Wikimedia inkblot, which answers 403 as the real URL
  is reported to (HandsOnLLM issue #98).

The commit sha of a repo is a hash of its file list, so it changes when the stand-ins are rebuilt.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import json
import re
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

# Files the Hub keeps in LFS (the default .gitattributes of a Hub repo), served as it serves them: a redirect to storage.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".gz", ".zip")
CHAPTER_IMAGES_PATH = "/HandsOnLLM/Hands-On-Large-Language-Models/main/chapter09/images/"
INKBLOT_PATH = "/wikipedia/commons/7/70/Rorschach_blot_01.jpg"
# The chapter's images (git ls-tree of HandsOnLLM/Hands-On-Large-Language-Models, commit 6042517): their sizes,
# and the scikit-image photograph that stands in for each.
CHAPTER_IMAGES = {"puppy.png": ((512, 512), "coffee"), "cat.png": ((583, 618), "chelsea"),
                  "car.png": ((492, 520), "rocket")}
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<path>.+)$")
API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/(?P<kind>revision|tree)/(?P<revision>[^/]+)(?P<path>/.*)?)?$")


@dataclass
class Repo:
    """One stand-in repository: its folder, files (relative posix paths) and commit sha."""

    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    sha: str = ""
    _digests: dict[str, str] = field(default_factory=dict)

    @classmethod
    def scan(cls, folder: Path) -> Repo:
        files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
        listing = "\n".join(f"{name} {path.stat().st_size}" for name, path in files.items())
        return cls(folder, files, hashlib.sha1(listing.encode()).hexdigest())

    def is_lfs(self, name: str) -> bool:
        return name.endswith(LFS_SUFFIXES)

    def blob_id(self, name: str) -> str:
        """git's blob id of a (small) file: the ETag the Hub gives it."""
        data = self.files[name].read_bytes()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def sha256(self, name: str) -> str:
        if name not in self._digests:
            digest = hashlib.sha256()
            with self.files[name].open("rb") as f:
                while chunk := f.read(2**24):
                    digest.update(chunk)
            self._digests[name] = digest.hexdigest()
        return self._digests[name]

    def tree_entry(self, name: str) -> dict:
        size = self.files[name].stat().st_size
        entry = {"type": "file", "path": name, "size": size}
        if self.is_lfs(name):
            entry |= {"oid": self.sha256(name)[:40], "lfs": {"oid": self.sha256(name), "size": size, "pointerSize": 134}}
        else:
            entry["oid"] = self.blob_id(name)
        return entry


def repos_under(root: Path) -> dict[str, Repo]:
    """Every `<owner>/<name>` folder two levels under `root`."""
    return {f"{owner.name}/{repo.name}": Repo.scan(repo)
            for owner in sorted(root.iterdir()) if owner.is_dir() and not owner.name.startswith(".")
            for repo in sorted(owner.iterdir()) if repo.is_dir()}


def chapter_image(name: str) -> bytes:
    """A stand-in for one of the chapter's PNG files: a scikit-image photograph resized to the real file's size."""
    from PIL import Image
    from skimage import data

    size, photo = CHAPTER_IMAGES[name]
    out = io.BytesIO()
    Image.fromarray(getattr(data, photo)()).convert("RGB").resize(size).save(out, format="PNG")
    return out.getvalue()


class Handler(http.server.BaseHTTPRequestHandler):
    server: LoopbackHub
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def log_message(self, format: str, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _answer(self, body: bool) -> None:
        self.server.requests.append((self.command, self.path, self.headers.get("User-Agent", "")))
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        query = urllib.parse.parse_qs(url.query)
        if path.startswith(CHAPTER_IMAGES_PATH):
            name = path.removeprefix(CHAPTER_IMAGES_PATH)
            if name in CHAPTER_IMAGES:
                return self._send(200, {"Content-Type": "image/png"}, self.server.image(name), body)
            return self._send(404, {"Content-Type": "text/plain"}, b"404: Not Found", body)
        if path == INKBLOT_PATH:  # Wikimedia's answer to the chapter's URL, as reported in HandsOnLLM issue #98
            return self._send(403, {"Content-Type": "text/plain"}, b"Forbidden", body)
        if path.startswith("/lfs/"):
            return self._lfs(path.removeprefix("/lfs/"), body)
        if match := RESOLVE.match(path):
            return self._resolve(match["repo"], match["revision"], match["path"], body)
        if match := API.match(path):
            return self._api(match["repo"], match["kind"], match["revision"], (match["path"] or "").strip("/"),
                             query.get("recursive", ["false"])[0].lower() == "true", body)
        self._send(404, {"Content-Type": "text/plain"}, b"no such route on the loopback Hub", body)

    def _repo(self, repo_id: str, revision: str | None, body: bool) -> Repo | None:
        repo = self.server.repos.get(repo_id)
        if repo is None:
            self._error(401, "RepoNotFound", f"Repository {repo_id} not found", body)
        elif revision not in (None, "main", repo.sha):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", body, repo)
            return None
        return repo

    def _resolve(self, repo_id: str, revision: str, name: str, body: bool) -> None:
        repo = self._repo(repo_id, revision, body)
        if repo is None:
            return
        if name not in repo.files:
            return self._error(404, "EntryNotFound", f"{name} does not exist on \"{revision}\"", body, repo)
        headers = {"X-Repo-Commit": repo.sha}
        if repo.is_lfs(name):
            size = repo.files[name].stat().st_size
            headers |= {"X-Linked-Etag": f'"{repo.sha256(name)}"', "X-Linked-Size": str(size),
                        "Location": f"{self.server.storage_url}/lfs/{repo_id}/{name}"}
            return self._send(302, headers, b"", body)
        headers |= {"ETag": f'"{repo.blob_id(name)}"', "Content-Type": "application/octet-stream"}
        self._send_file(repo.files[name], headers, body)

    def _lfs(self, rest: str, body: bool) -> None:
        owner, name, path = (rest.split("/", 2) + ["", ""])[:3]
        repo = self.server.repos.get(f"{owner}/{name}")
        if repo is None or path not in repo.files:
            return self._send(404, {"Content-Type": "text/plain"}, b"no such object", body)
        self._send_file(repo.files[path], {"ETag": f'"{repo.sha256(path)}"', "Content-Type": "binary/octet-stream"},
                        body)

    def _api(self, repo_id: str, kind: str | None, revision: str | None, path: str, recursive: bool,
             body: bool) -> None:
        repo = self._repo(repo_id, revision, body)
        if repo is None:
            return
        if kind == "tree":
            prefix = f"{path}/" if path else ""
            names = [n for n in repo.files if n.startswith(prefix)]
            if not recursive:
                names = [n for n in names if "/" not in n.removeprefix(prefix)]
            folders = sorted({prefix + n.removeprefix(prefix).split("/")[0] for n in repo.files
                              if n.startswith(prefix) and "/" in n.removeprefix(prefix)})
            entries = [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0}
                       for f in folders] + [repo.tree_entry(n) for n in names]
            return self._json(entries, body)
        info = {"id": repo_id, "modelId": repo_id, "sha": repo.sha, "private": False, "disabled": False,
                "gated": False, "tags": [], "siblings": [{"rfilename": n} for n in repo.files]}
        self._json(info, body)

    def _error(self, status: int, code: str, message: str, body: bool, repo: Repo | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        if repo is not None:
            headers["X-Repo-Commit"] = repo.sha
        self._send(status, headers, json.dumps({"error": message}).encode(), body)

    def _json(self, value, body: bool) -> None:
        self._send(200, {"Content-Type": "application/json"}, json.dumps(value).encode(), body)

    def _send_file(self, file: Path, headers: dict[str, str], body: bool) -> None:
        size = file.stat().st_size
        start, end = 0, size - 1
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if ranged:  # a resumed download (`N-`) or a safetensors header read (`0-100000`)
            start, end = min(int(ranged[1]), size), min(int(ranged[2] or end), end)
        headers = headers | {"Content-Length": str(max(end - start + 1, 0)), "Accept-Ranges": "bytes"}
        if ranged:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self.send_response(206 if ranged else 200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            with file.open("rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0 and (chunk := f.read(min(2**20, left))):
                    self.wfile.write(chunk)
                    left -= len(chunk)

    def _send(self, status: int, headers: dict[str, str], data: bytes, body: bool) -> None:
        self.send_response(status)
        for name, value in (headers | {"Content-Length": str(len(data))}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(data)


class LoopbackHub(http.server.ThreadingHTTPServer):
    """The server: `with LoopbackHub(folder) as hub:` serves in a thread; `hub.url` is its HF_ENDPOINT."""

    daemon_threads = True
    request_queue_size = 128  # huggingface_hub opens several connections at once (one a shard)

    def __init__(self, root: Path, port: int = 0, verbose: bool = False):
        super().__init__(("127.0.0.1", port), Handler)
        self.repos = repos_under(Path(root))
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        # LFS downloads are redirected to "another host", as the Hub's go to its CDN: huggingface_hub follows
        # redirects to the same host itself and reads the file's metadata from the redirect only when it does not.
        self.storage_url = f"http://localhost:{self.server_address[1]}"
        self.verbose = verbose
        self.requests: list[tuple[str, str, str]] = []  # (method, path, User-Agent), for tests
        self._images: dict[str, bytes] = {}
        self._thread: threading.Thread | None = None

    def image(self, name: str) -> bytes:
        if name not in self._images:
            self._images[name] = chapter_image(name)
        return self._images[name]

    def environment(self) -> dict[str, str]:
        """What a process needs to use this Hub in hub mode."""
        return {"HF_ENDPOINT": self.url, "MMLAB_IMAGE_BASE_URL": self.url, "MMLAB_MODE": "hub"}

    def __enter__(self):
        self._thread = threading.Thread(target=self.serve_forever, name="loopback-hub", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", help="stand-in repos (default: tools/stand_ins.py tiny)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.folder is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from stand_ins import build

        args.folder = build("tiny")
    with LoopbackHub(args.folder, args.port, args.verbose) as hub:
        for name, value in hub.environment().items():
            print(f"{name}={value}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
