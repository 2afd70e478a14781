"""python -m tasks download [NAME ... | all] [--data_dir DIR]

Fetches the files of data-backed tasks into the data directory, at the paths their loaders read.
Each task says where its files come from (Task.download, a tasks.Download):
  urls       direct links (GitHub raw, SSA, GCS, Zenodo, ...), fetched with urllib;
  hub        a Hugging Face dataset: its hub_files, fetched with huggingface_hub.hf_hub_download
             into hub_dir (HF_ENDPOINT is honoured, so a mirror works; a `huggingface-cli login`
             token is used for gated datasets whose terms were accepted);
  manual     gated or form-based sources: the instructions are printed, nothing is fetched.
A URL download is written to <file>.part and renamed when complete, so a file that exists is
whole. An interrupted download resumes from the .part size (HTTP Range). The size is checked
against Content-Length and, where the Download lists one, the sha256. Files already present are
skipped. Archives are kept as downloaded (loaders read zips in place) except the ones a Download
lists in `unzip`, which are extracted next to themselves as well.
"""
import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

import cli
import tasks

# some hosts refuse urllib's bare user agent
USER_AGENT = "Mozilla/5.0 (compatible; spectrum-tasks-download; +python-urllib)"
CHUNK = 1 << 20


class DownloadError(Exception):
    """One line: what failed (status, URL) and what to do."""


def _hint(status: int) -> str:
    if status == 404:
        return "no file at this address (moved or renamed upstream): fix the task's Download"
    if status in (401, 403):
        return "access denied (a login, a form, or a block on scripts): fetch it in a browser"
    if status == 429 or status >= 500:
        return "the server is busy or down: retry later"
    return "check the URL in the task's Download"


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def fetch_url(url: str, dest, sha256: str = "", timeout: float = 60, _retried=False) -> str:
    """Download url to dest via dest.part (resumed if present), check it, rename. Returns
    "present" or "fetched"; raises DownloadError (one line) on failure, leaving only a .part."""
    dest = Path(dest)
    if dest.exists():
        return "present"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    try:
        resp = _open(url, have, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have and not _retried:  # the .part is not a prefix we can extend
            part.unlink()
            return fetch_url(url, dest, sha256, timeout, _retried=True)
        raise DownloadError(f"HTTP {e.code} {e.reason} for {url} -> {dest}: "
                            f"{_hint(e.code)}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"cannot reach {url} ({reason}): check the network or proxy and "
                            f"rerun") from None
    with resp:
        if have and resp.status != 206:  # the server ignored Range: start again from byte 0
            have = 0
        total = _total(resp, have)
        with open(part, "ab" if have else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=dest.name,
                disable=None, leave=False) as bar:
            try:
                for block in iter(lambda: resp.read(CHUNK), b""):
                    f.write(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as e:  # connection dropped: keep the .part
                raise DownloadError(f"download of {url} interrupted after {f.tell()} bytes "
                                    f"({e}): rerun to resume") from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"incomplete download of {url}: {size} of {total} bytes: "
                            f"rerun to resume")
    if sha256 and sha256_of(part) != sha256.lower():
        part.unlink()
        raise DownloadError(f"sha256 mismatch for {url} -> {dest} (changed upstream or corrupt; "
                            f"the partial file was removed): rerun, or update the task's Download")
    os.replace(part, dest)
    return "fetched"


def _total(resp, have: int):
    """Full file size from Content-Range (a resumed 206) or Content-Length, else None."""
    m = re.match(r"bytes (\d+)-\d+/(\d+)", resp.headers.get("Content-Range") or "")
    if resp.status == 206 and m:
        if int(m.group(1)) != have:
            raise DownloadError(f"server resumed {resp.url} at byte {m.group(1)}, not {have}: "
                                f"delete the .part file and rerun")
        return int(m.group(2))
    n = resp.headers.get("Content-Length")
    return have + int(n) if n is not None else None


def fetch_hub(repo: str, filename: str, local_dir, revision: str = "") -> str:
    """One file of a Hugging Face dataset into local_dir/filename (huggingface_hub downloads to
    a temporary file, resumes it, and moves it into place when complete)."""
    dest = Path(local_dir) / filename
    if dest.exists():
        return "present"
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub import errors
    except ImportError:
        raise DownloadError(f"{repo} is on the Hugging Face Hub: "
                            f"pip install huggingface_hub") from None
    endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    where = f"{endpoint}/datasets/{repo} ({filename}{' @ ' + revision if revision else ''})"
    try:
        hf_hub_download(repo, filename, repo_type="dataset", revision=revision or None,
                        local_dir=str(local_dir), endpoint=endpoint)
    except Exception as e:  # huggingface_hub wraps the real error of a failed HEAD call
        cause = e.__cause__ if isinstance(e, errors.LocalEntryNotFoundError) and e.__cause__ else e
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if isinstance(cause, errors.GatedRepoError):
            msg = "gated: accept its terms on that page, run `huggingface-cli login`, rerun"
        elif isinstance(cause, errors.RepositoryNotFoundError):
            msg = "no such dataset (or private): check the task's Download"
        elif isinstance(cause, errors.OfflineModeIsEnabled):
            msg = "HF_HUB_OFFLINE is set: unset it to download"
        elif isinstance(cause, errors.HfHubHTTPError) and status:
            msg = f"HTTP {status}: {_hint(status)}"
        else:
            first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
            msg = f"{type(cause).__name__} {first}: check the network, proxy or HF_ENDPOINT, rerun"
        raise DownloadError(f"cannot download {where}: {msg}") from None
    return "fetched"


def unzip(path) -> int:
    """Extract a zip next to itself (member by member, each written whole), skipping macOS
    metadata and members already there. Returns how many files were written."""
    path = Path(path)
    n = 0
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name = info.filename
            if info.is_dir() or name.startswith("__MACOSX/") or Path(name).name in (".DS_Store",):
                continue
            dest = (path.parent / name).resolve()
            if path.parent.resolve() not in dest.parents:
                raise DownloadError(f"{path} has a member outside its folder ({name}): "
                                    f"not extracted")
            if dest.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            with z.open(info) as src, open(tmp, "wb") as out:
                while block := src.read(CHUNK):
                    out.write(block)
            os.replace(tmp, dest)
            n += 1
    return n


def fetch(d: tasks.Download, root) -> dict[str, str]:
    """Every fetchable file of one Download: {path under the data dir: "present"/"fetched"}.
    The first failure raises DownloadError (files fetched before it stay)."""
    root = Path(root)
    done = {}
    for rel, url in d.urls.items():
        done[rel] = fetch_url(url, root / rel, d.sha256.get(rel, ""))
    for f in d.hub_files:
        rel = f"{d.hub_dir}/{f}" if d.hub_dir else f
        done[rel] = fetch_hub(d.hub, f, root / d.hub_dir if d.hub_dir else root, d.hub_revision)
        if d.sha256.get(rel) and done[rel] == "fetched" and sha256_of(root / rel) != d.sha256[rel]:
            (root / rel).unlink()
            raise DownloadError(f"sha256 mismatch for {d.hub}/{f} -> {root / rel} (removed): "
                                f"rerun, or update the task's Download")
    for z in d.unzip:
        unzip(root / z)
    return done


def sources(names: list[str]) -> list[tuple[tasks.Download | None, list[tasks.Task]]]:
    """The named tasks grouped by their Download (tasks of one source share one), in order."""
    out = []
    for name in names:
        t = tasks.get(name)
        for d, ts in out:
            if d is not None and d == t.download:
                ts.append(t)
                break
        else:
            out.append((t.download, [t]))
    return out


def manual_text(d: tasks.Download, ts: list[tasks.Task], root) -> str:
    files = sorted({f for t in ts for f in t.files})
    return (f"{', '.join(t.name for t in ts)}: manual download\n  {d.manual}\n  place: "
            + ", ".join(f"{root}/{f}" for f in files))


def main(argv=None) -> int:
    p = cli.Parser(prog="python -m tasks download",
                                description=__doc__.split("\n\n")[1].split("\n")[0],
                                epilog="Details: the docstring of tasks/download.py.")
    p.add_argument("names", nargs="*", help="task names, or `all` for every data-backed task")
    p.add_argument("--data_dir", default=None,
                   help="data directory (default: $SPECTRUM_DATA, else data/)")
    a = p.parse_args(argv)
    if not a.names:
        p.error("name the tasks to download, or `all`")
    names = [n for n, t in tasks.TASKS.items() if t.files] if a.names == ["all"] else a.names
    try:
        groups = sources(names)
    except KeyError as e:
        raise cli.UserError(e.args[0]) from None
    root = tasks.data_dir(a.data_dir)
    print(f"data directory: {root}")
    counts = {"present": 0, "fetched": 0, "manual": 0, "failed": 0, "no source": 0}
    for d, ts in groups:
        label = ", ".join(t.name for t in ts)
        files = {f for t in ts for f in t.files}
        if not files:
            print(f"{label}: needs no data")
            continue
        if files and all((root / f).exists() for f in files):
            print(f"{label}: present")
            counts["present"] += 1
            continue
        if d is None:
            print(f"{label}: no Download spec; get {', '.join(sorted(files))} from {ts[0].source}")
            counts["no source"] += 1
            continue
        if d.urls or d.hub_files:
            try:
                got = fetch(d, root)
                n = sum(v == "fetched" for v in got.values())
                print(f"{label}: {n} file(s) fetched, {len(got) - n} already present")
                counts["fetched"] += 1
            except DownloadError as e:
                print(f"{label}: FAILED: {e}", file=sys.stderr)
                counts["failed"] += 1
        if d.manual:
            print(manual_text(d, ts, root))
            counts["manual"] += 1
    print("sources: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    return 1 if counts["failed"] else 0
