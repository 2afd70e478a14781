"""`python -m tasks download` against an HTTP server on 127.0.0.1 (a thread of this test)
serving fixture files: full download, resume of a partial .part, a server that ignores Range,
404 and checksum failures (one line, no half-written file), zip extraction, manual sources,
the Hugging Face Hub path (HF_ENDPOINT pointed at the same server), and the CLI.
"""
import hashlib
import io
import re
import subprocess
import sys
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import tasks
from tasks import Download, Task, download

ROOT = Path(__file__).resolve().parents[1]
BODY = np.random.default_rng(0).integers(0, 256, size=3 * (1 << 20) + 12345,
                                         dtype=np.uint8).tobytes()
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class Handler(BaseHTTPRequestHandler):
    """Serves `files` ({path: bytes}); honours "Range: bytes=N-" unless `ignore_range`; `cut`
    sends only the first half of a body (with the full Content-Length) and closes. Paths under
    /datasets/ answer like the Hub's resolve endpoint (X-Repo-Commit, ETag)."""
    files: dict = {}
    log: list = []
    ignore_range = False
    cut = False

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        rng = self.headers.get("Range")
        Handler.log.append((self.command, path, rng))
        body = self.files.get(path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "9")
            self.end_headers()
            if not head:
                self.wfile.write(b"not found")
            return
        start = 0
        if rng and not self.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        if path.startswith("/datasets/"):
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.end_headers()
        if not head:
            part = body[start:]
            self.wfile.write(part[:len(part) // 2] if self.cut else part)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    Handler.files, Handler.log, Handler.ignore_range, Handler.cut = {}, [], False, False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def gets(path):
    return [r for r in Handler.log if r[0] == "GET" and r[1] == path]


# --- plain URLs ---------------------------------------------------------------------------------

def test_full_download_then_present(server, tmp_path):
    Handler.files["/f/data.bin"] = BODY
    dest = tmp_path / "src" / "data.bin"
    assert download.fetch_url(f"{server}/f/data.bin", dest) == "fetched"
    assert dest.read_bytes() == BODY and not (tmp_path / "src" / "data.bin.part").exists()
    assert download.fetch_url(f"{server}/f/data.bin", dest) == "present"
    assert len(gets("/f/data.bin")) == 1 and gets("/f/data.bin")[0][2] is None


def test_resume_from_partial_part(server, tmp_path):
    Handler.files["/f/data.bin"] = BODY
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(BODY[:1000])
    assert download.fetch_url(f"{server}/f/data.bin", dest) == "fetched"
    assert gets("/f/data.bin") == [("GET", "/f/data.bin", "bytes=1000-")]
    assert dest.read_bytes() == BODY and not (tmp_path / "data.bin.part").exists()


def test_interrupted_download_keeps_part_and_resumes(server, tmp_path):
    Handler.files["/f/data.bin"] = BODY
    dest = tmp_path / "data.bin"
    Handler.cut = True
    with pytest.raises(download.DownloadError) as e:
        download.fetch_url(f"{server}/f/data.bin", dest, timeout=10)
    assert "\n" not in str(e.value) and "rerun to resume" in str(e.value) and not dest.exists()
    half = (tmp_path / "data.bin.part").stat().st_size
    assert 0 < half < len(BODY)
    Handler.cut = False
    assert download.fetch_url(f"{server}/f/data.bin", dest) == "fetched"
    assert gets("/f/data.bin")[-1][2] == f"bytes={half}-" and dest.read_bytes() == BODY


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    Handler.files["/f/data.bin"] = BODY
    Handler.ignore_range = True
    (tmp_path / "data.bin.part").write_bytes(b"\xff" * 5000)  # not even a prefix of the file
    assert download.fetch_url(f"{server}/f/data.bin", tmp_path / "data.bin") == "fetched"
    assert (tmp_path / "data.bin").read_bytes() == BODY


def test_404_is_one_line_and_writes_nothing(server, tmp_path):
    dest = tmp_path / "sub" / "missing.csv"
    with pytest.raises(download.DownloadError) as e:
        download.fetch_url(f"{server}/nowhere/missing.csv", dest)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("HTTP 404") and f"{server}/nowhere/missing.csv" in msg
    assert "fix the task's Download" in msg
    assert not dest.exists() and not dest.with_name("missing.csv.part").exists()


def test_unreachable_host_is_one_line(tmp_path):
    with pytest.raises(download.DownloadError) as e:
        download.fetch_url("http://127.0.0.1:9/x.csv", tmp_path / "x.csv", timeout=5)
    assert "\n" not in str(e.value) and str(e.value).startswith("cannot reach http://127.0.0.1:9/x.csv")
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.csv.part").exists()


def test_checksum(server, tmp_path):
    Handler.files["/f/data.bin"] = BODY
    good = hashlib.sha256(BODY).hexdigest()
    with pytest.raises(download.DownloadError) as e:
        download.fetch_url(f"{server}/f/data.bin", tmp_path / "a.bin", sha256="0" * 64)
    assert "sha256 mismatch" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "a.bin.part").exists()
    assert download.fetch_url(f"{server}/f/data.bin", tmp_path / "a.bin", sha256=good) == "fetched"


def test_zip_kept_and_extracted_only_when_listed(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("yob1900.txt", "Mary,F,16706\n")
        z.writestr("sub/readme.txt", "hello")
        z.writestr("__MACOSX/._yob1900.txt", b"\x00")
        z.writestr(".DS_Store", b"\x00")
    Handler.files["/names.zip"] = buf.getvalue()
    url = f"{server}/names.zip"
    download.fetch(Download(urls={"keep/names.zip": url}), tmp_path)
    assert sorted(p.name for p in (tmp_path / "keep").iterdir()) == ["names.zip"]
    download.fetch(Download(urls={"ssa/names.zip": url}, unzip=("ssa/names.zip",)), tmp_path)
    assert (tmp_path / "ssa/yob1900.txt").read_text() == "Mary,F,16706\n"
    assert (tmp_path / "ssa/sub/readme.txt").read_text() == "hello"
    assert sorted(p.name for p in (tmp_path / "ssa").iterdir()) == ["names.zip", "sub", "yob1900.txt"]


# --- the Hugging Face Hub path ------------------------------------------------------------------

@pytest.fixture
def hub(server, monkeypatch, tmp_path):
    """HF_ENDPOINT at the local server, offline mode off, a throwaway HF cache."""
    constants = pytest.importorskip("huggingface_hub.constants", reason="pip install huggingface_hub")
    monkeypatch.setenv("HF_ENDPOINT", server)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    return server


def test_hub_download_through_hf_endpoint(hub, tmp_path):
    Handler.files["/datasets/org/bench/resolve/refs/convert/parquet/cfg/validation/0000.parquet"] = BODY
    Handler.files["/datasets/org/bench/resolve/main/data/test.csv"] = b"a,b\n1,2\n"
    d = Download(hub="org/bench", hub_files=("cfg/validation/0000.parquet",), hub_dir="bench",
                 hub_revision="refs/convert/parquet")
    assert download.fetch(d, tmp_path / "data") == {"bench/cfg/validation/0000.parquet": "fetched"}
    assert (tmp_path / "data/bench/cfg/validation/0000.parquet").read_bytes() == BODY
    d = Download(hub="org/bench", hub_files=("data/test.csv",), hub_dir="bench")
    assert download.fetch(d, tmp_path / "data") == {"bench/data/test.csv": "fetched"}
    assert (tmp_path / "data/bench/data/test.csv").read_bytes() == b"a,b\n1,2\n"
    assert download.fetch(d, tmp_path / "data") == {"bench/data/test.csv": "present"}
    assert not list((tmp_path / "data").rglob("*.incomplete"))


def test_hub_missing_file_is_one_line(hub, tmp_path):
    d = Download(hub="org/bench", hub_files=("nope.parquet",), hub_dir="bench")
    with pytest.raises(download.DownloadError) as e:
        download.fetch(d, tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "org/bench" in msg and "nope.parquet" in msg and "404" in msg
    assert not (tmp_path / "bench/nope.parquet").exists()


# --- the CLI ------------------------------------------------------------------------------------

def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "tasks", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, **kw)


def test_help_names_the_commands():
    assert cli("--help").stdout.startswith("usage: python -m tasks ")
    out = cli("download", "--help")
    assert out.returncode == 0 and out.stdout.startswith("usage: python -m tasks download ")
    out = cli("download")
    assert out.returncode == 1 and "name the tasks to download, or `all`" in out.stderr


def test_manual_source_prints_instructions(tmp_path):
    out = cli("download", "jeopardy_question_generation", "jeopardy_answer_prediction",
              "--data_dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert ("jeopardy_question_generation, jeopardy_answer_prediction: manual download"
            in out.stdout)  # one source, listed once for both tasks
    assert "https://drive.google.com/file/d/0BwT5wj_P7BKXUl9tOUJWYzVvUjA" in out.stdout
    assert f"place: {tmp_path}/jeopardy/JEOPARDY_CSV.csv" in out.stdout
    assert not list(tmp_path.iterdir())
    bad = cli("download", "jeopardy_questions", "--data_dir", str(tmp_path))
    assert bad.returncode == 1 and "unknown task 'jeopardy_questions'" in bad.stderr


def test_cli_groups_sources_skips_present_and_reports_failures(server, tmp_path, monkeypatch,
                                                               capsys):
    Handler.files["/gh/a.csv"] = b"x\n1\n"
    Handler.files["/gh/b.csv"] = b"y\n2\n"
    shared = Download(urls={"src/a.csv": f"{server}/gh/a.csv", "src/b.csv": f"{server}/gh/b.csv"})
    fake = {
        "t_a": Task("t_a", "train", server, instances=list, files=("src/a.csv",), download=shared),
        "t_b": Task("t_b", "train", server, instances=list, files=("src/b.csv",), download=shared),
        "t_gone": Task("t_gone", "train", server, instances=list, files=("gone/x.csv",),
                       download=Download(urls={"gone/x.csv": f"{server}/gone/x.csv"})),
        "t_form": Task("t_form", "val", server, instances=list, files=("form/x.csv",),
                       download=Download(manual="Fill in the form at https://example.org/form.")),
        "t_none": Task("t_none", "train", server, instances=list, files=("none/x.csv",)),
        "t_synth": Task("t_synth", "train", "synthetic", instances=list),
    }
    monkeypatch.setattr(tasks, "TASKS", fake)
    rc = download.main(["all", "--data_dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "t_a, t_b: 2 file(s) fetched, 0 already present" in out
    assert (tmp_path / "src/a.csv").read_bytes() == b"x\n1\n"
    assert re.search(r"t_gone: FAILED: HTTP 404 .*/gone/x.csv", err) and len(err.splitlines()) == 1
    assert "t_form: manual download\n  Fill in the form at https://example.org/form.\n  place: " \
           f"{tmp_path}/form/x.csv" in out
    assert "t_none: no Download spec" in out and "t_synth" not in out
    assert len(gets("/gh/a.csv")) == 1
    rc = download.main(["t_a", "t_b", "t_synth", "--data_dir", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert rc == 0 and "t_a, t_b: present" in out and "t_synth: needs no data" in out
    assert len(gets("/gh/a.csv")) == 1  # nothing fetched again


def test_listing_columns_and_count_line(tmp_path):
    out = cli("--data_dir", str(tmp_path), "coinflip", "gsm8k_question", "mmlu")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()
            if line.startswith(("coinflip", "gsm8k_question", "mmlu"))}
    assert rows["coinflip"].split()[1:3] == ["train", "instances"] and " offline " in rows["coinflip"]
    assert "real    MISSING:" in rows["gsm8k_question"] and "real    MISSING:" in rows["mmlu"]
    assert "python -m tasks download mmlu" in rows["mmlu"]
    assert out.stdout.strip().endswith("3 registered / 1 built here (1 train + 0 val) / "
                                       "2 checked on real files / 0 fixture-only")


def test_every_download_covers_its_task_files():
    from tasks import (ambient, arc, babynames, chemistry, diffuse, generativesocialchoice, gsm8k,
                       haikus, hellaswag, imdb, issuebench, jeopardy, lewidi, mmlu, nytimes, polis,
                       popquorn, titanic, truthful_qa, validity, winogrande)
    modules = [ambient, arc, babynames, chemistry, diffuse, generativesocialchoice, gsm8k, haikus,
               hellaswag, imdb, issuebench, jeopardy, lewidi, mmlu, nytimes, polis, popquorn,
               titanic, truthful_qa, validity, winogrande]
    for t in (t for m in modules for t in m.TASKS):
        d = t.download
        assert d is not None and t.checked == "real", t.name
        targets = set(d.urls) | {f"{d.hub_dir}/{f}" for f in d.hub_files}
        assert all(u.startswith("https://") for u in d.urls.values()), t.name
        assert set(d.sha256) <= targets and set(d.unzip) <= targets, t.name
        for f in t.files:  # fetched as is, a folder of fetched files, extracted, or manual
            assert (f in targets or any(x.startswith(f + "/") for x in targets)
                    or any(Path(z).parent == Path(f).parent for z in d.unzip) or d.manual), f
