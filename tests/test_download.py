"""fetch against a loopback HTTP server: resume after a dropped connection, checksums,
multi-part archives, extraction and its path-traversal guard, local folders, gated corpora."""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.download import (
    KNOWN_CHECKSUMS,
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download,
    extract,
    fetch_corpus,
    parse_checksums,
)


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    drops: dict[str, int] = {}  # path -> how many more responses to cut in the middle
    ignore_range: bool = False
    log: list[tuple[str, str | None]] = []

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        data = self.files.get(self.path)
        self.log.append((self.path, self.headers.get("Range")))
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and not self.ignore_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.drops.get(self.path, 0) > 0:
            self.drops[self.path] -= 1
            # Send a third of what was promised, then drop the connection.
            self.wfile.write(body[: max(1, len(body) // 3)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    _Handler.files, _Handler.drops, _Handler.log, _Handler.ignore_range = {}, {}, [], False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield _Handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _payload(n: int, seed: int = 0) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (n // 32) + bytes(n % 32)


def test_dropped_connection_resumes_to_identical_bytes(server, tmp_path):
    handler, base = server
    data = _payload(300_000)
    handler.files["/big.bin"] = data
    handler.drops["/big.bin"] = 2
    dest = tmp_path / "big.bin"
    fetched = download(f"{base}/big.bin", dest, retries=3, backoff_s=0.01, progress=False)
    assert dest.read_bytes() == data
    assert not dest.with_name("big.bin.part").exists()
    ranges = [r for p, r in handler.log if p == "/big.bin"]
    assert ranges[0] is None and all(r is not None and r.startswith("bytes=") for r in ranges[1:])
    assert len(ranges) == 3
    assert fetched == len(data)  # resumed: no byte fetched twice


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    handler, base = server
    data = _payload(100_000, 1)
    handler.files["/f.bin"] = data
    handler.drops["/f.bin"] = 1
    handler.ignore_range = True
    dest = tmp_path / "f.bin"
    download(f"{base}/f.bin", dest, retries=2, backoff_s=0.01, progress=False)
    assert dest.read_bytes() == data


def test_wrong_checksum_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    handler, base = server
    handler.files["/vox2_dev_aac_partaa"] = b"not the real VoxCeleb2 part" * 100
    out = tmp_path / "vox"
    with pytest.raises(ChecksumError, match=r"vox2_dev_aac_partaa: md5 checksum mismatch \(expected da070494"):
        fetch_corpus("voxceleb2", f"{base}/vox2_dev_aac_partaa", out, progress=False)
    assert not (out / "vox2_dev_aac_partaa").exists()
    assert not (out / "vox2_dev_aac_partaa.part").exists()


def test_user_checksums_verify_and_second_fetch_is_a_no_op(server, tmp_path):
    handler, base = server
    data = _payload(50_000, 2)
    handler.files["/clip.bin"] = data
    sums = tmp_path / "sums.txt"
    sums.write_text(f"{hashlib.sha256(data).hexdigest()}  clip.bin\n")
    out = tmp_path / "out"
    first = fetch_corpus("mycorpus", f"{base}/clip.bin", out, checksums=sums, progress=False)
    assert first.downloaded == ["clip.bin"] and "clip.bin" in first.verified
    n_requests = len(handler.log)
    second = fetch_corpus("mycorpus", f"{base}/clip.bin", out, checksums=sums, progress=False)
    assert second.downloaded == [] and second.present == ["clip.bin"]
    assert len(handler.log) == n_requests  # nothing fetched again
    assert (out / "clip.bin").read_bytes() == data


def test_http_404_names_the_url(server, tmp_path):
    _, base = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{base}/missing.zip", tmp_path / "missing.zip", progress=False)


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_url_list_multipart_concatenation_and_extraction(server, tmp_path):
    handler, base = server
    archive = _zip_bytes({"dev/mp4/id00001/abc/00001.mp4": b"a" * 1000, "dev/mp4/id00002/xyz/00002.mp4": b"b" * 10})
    cut = [archive[: len(archive) // 3], archive[len(archive) // 3 : 2 * len(archive) // 3], archive[2 * len(archive) // 3 :]]
    lines = []
    for suffix, piece in zip(("aa", "ab", "ac"), cut):
        handler.files[f"/vox_dev_mp4_part{suffix}"] = piece
        lines.append(f"{base}/vox_dev_mp4_part{suffix} md5:{hashlib.md5(piece).hexdigest()}")
    handler.drops["/vox_dev_mp4_partab"] = 1
    url_list = tmp_path / "parts.urls"
    url_list.write_text("# my links\n" + "\n".join(lines) + "\n")
    out = tmp_path / "out"
    summary = fetch_corpus("vox", str(url_list), out, retries=2, progress=False)
    assert (out / "vox_dev_mp4.zip").read_bytes() == archive
    assert (out / "dev/mp4/id00001/abc/00001.mp4").read_bytes() == b"a" * 1000
    assert summary.assembled == ["vox_dev_mp4.zip"] and summary.extracted == ["vox_dev_mp4.zip"]
    again = fetch_corpus("vox", str(url_list), out, progress=False)
    assert again.downloaded == [] and again.assembled == [] and again.extracted == []


def test_multipart_gap_is_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "x_partaa").write_bytes(b"1")
    (src / "x_partac").write_bytes(b"3")
    with pytest.raises(DownloadError, match=r"x: multi-part archive has gaps .*'ab'"):
        fetch_corpus("mine", str(src), tmp_path / "out", progress=False)


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_zip_path_traversal_refused(tmp_path, member):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip_bytes({"ok.txt": b"fine", member: b"gotcha"}))
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="refusing member"):
        extract(archive, out)
    assert not (tmp_path / "evil.txt").exists()
    assert not (out / "ok.txt").exists()  # checked before anything was written


def test_tar_link_out_of_tree_refused(tmp_path):
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("data/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../etc/passwd"
        tf.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="points outside"):
        extract(archive, tmp_path / "out")


def test_tar_gz_extracts(tmp_path):
    archive = tmp_path / "good.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        data = b"hello"
        info = tarfile.TarInfo("kodf/original_videos/s1/a.mp4")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    out = tmp_path / "out"
    summary = fetch_corpus("kodf", f"file://{archive}", out, progress=False)
    assert (out / "kodf/original_videos/s1/a.mp4").read_bytes() == b"hello"
    assert summary.extracted == ["good.tar.gz"]


def test_local_folder_is_hard_linked_and_idempotent(tmp_path):
    src = tmp_path / "src"
    (src / "id00001" / "yt").mkdir(parents=True)
    (src / "id00001" / "yt" / "00001.mp4").write_bytes(b"video")
    out = tmp_path / "out"
    first = fetch_corpus("voxceleb2", str(src), out, progress=False)
    copy = out / "id00001" / "yt" / "00001.mp4"
    assert copy.read_bytes() == b"video"
    assert first.linked == 1 and os.stat(copy).st_ino == os.stat(src / "id00001/yt/00001.mp4").st_ino
    second = fetch_corpus("voxceleb2", str(src), out, progress=False)
    assert second.linked == 0 and second.copied == 0 and len(second.present) == 1


def test_gated_corpus_without_source_says_how_to_get_access(tmp_path):
    for corpus in ("voxceleb2", "fakeavceleb", "kodf", "cmdfd"):
        with pytest.raises(DownloadError, match=rf"{corpus} is a gated corpus.*To get access"):
            fetch_corpus(corpus, None, tmp_path / corpus)


def test_missing_source_and_bad_scheme(tmp_path):
    with pytest.raises(DownloadError, match="does not exist"):
        fetch_corpus("mine", str(tmp_path / "nope"), tmp_path / "out")
    with pytest.raises(DownloadError, match="unsupported source scheme 'ftp'"):
        fetch_corpus("mine", "ftp://example.org/x.zip", tmp_path / "out")


def test_checksum_file_formats():
    md5 = "da070494c573e5c0564b1d11c3b20577"
    sha = "a" * 64
    table = parse_checksums(f"{md5}  vox2_dev_aac_partaa\nclip.zip {sha}\n# comment\n")
    assert str(table["vox2_dev_aac_partaa"]) == f"md5:{md5}"
    assert str(table["clip.zip"]) == f"sha256:{sha}"
    with pytest.raises(DownloadError, match="line 1"):
        parse_checksums("nothex name\n")
    # The published table parses and covers the eight AAC parts.
    assert sum(name.startswith("vox2_dev_aac_part") for name in KNOWN_CHECKSUMS["voxceleb2"]) == 8
