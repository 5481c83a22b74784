"""The data layer: strict IDX parsing, orientation, splits, import, and download over real HTTP."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import threading
import zipfile

import numpy as np
import pytest
import torch
from conftest import synthetic_letters

from letterbench.cli.main import main
from letterbench.core.errors import DataError
from letterbench.data.emnist import load_emnist, member_name
from letterbench.data.fetch import download, extract_split, import_path
from letterbench.data.idx import encode_idx

# An "F": not symmetric under any flip or transpose, so it proves the orientation fix.
GLYPH_F = np.zeros((28, 28), np.uint8)
GLYPH_F[4:24, 8:11] = 255  # the stem, on the left
GLYPH_F[4:7, 8:20] = 255  # top arm
GLYPH_F[12:15, 8:17] = 255  # middle arm


# ---------------------------------------------------------------- archive, import


def make_archive(split: str = "letters") -> bytes:
    imgs, labels = synthetic_letters(2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for part in ("train", "test"):
            zf.writestr(f"gzip/{member_name(split, part, 'images')}", encode_idx(imgs.transpose(0, 2, 1)))
            zf.writestr(f"gzip/{member_name(split, part, 'labels')}", encode_idx(labels + 1))
        zf.writestr(
            f"gzip/emnist-{split}-mapping.txt", "".join(f"{i + 1} {65 + i} {97 + i}\n" for i in range(26))
        )
        zf.writestr("gzip/../../evil.txt", "path traversal attempt")
    return buf.getvalue()


def test_extract_reads_only_expected_members(tmp_path):
    (tmp_path / "gzip.zip").write_bytes(make_archive())
    out = tmp_path / "data"
    written = extract_split(tmp_path / "gzip.zip", "letters", out)
    assert len(written) == 5
    assert not (tmp_path / "evil.txt").exists() and not list(tmp_path.rglob("evil.txt"))
    data = load_emnist(out)
    assert len(data.train_labels) == 52


def test_import_zip_folder_and_single_files(tmp_path):
    (tmp_path / "gzip.zip").write_bytes(make_archive())
    assert len(import_path(tmp_path / "gzip.zip", tmp_path / "a")) == 5
    assert load_emnist(tmp_path / "a").num_classes == 26
    # a folder holding uncompressed files: they are checked and stored compressed
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    for path in (tmp_path / "a").glob("*.gz"):
        (raw_dir / path.name.removesuffix(".gz")).write_bytes(gzip.decompress(path.read_bytes()))
    import_path(raw_dir, tmp_path / "b")
    assert torch.equal(load_emnist(tmp_path / "b").train_images, load_emnist(tmp_path / "a").train_images)
    one = next((tmp_path / "a").glob("*train-labels*"))
    assert import_path(one, tmp_path / "c") == [tmp_path / "c" / one.name]


def test_import_rejects_foreign_and_broken_files_and_writes_nothing(tmp_path, capsys):
    foreign = tmp_path / "holiday.jpg"
    foreign.write_bytes(b"\xff\xd8\xff\xe0 not idx")
    assert main(["data", "import", str(foreign), "--data-dir", str(tmp_path / "d")]) == 1
    assert "not an EMNIST file name" in capsys.readouterr().err
    folder = tmp_path / "mixed"
    folder.mkdir()
    imgs, labels = synthetic_letters(1)
    # The broken file is the one that sorts last: an import that wrote as it went would have
    # written the images before finding it.
    (folder / member_name("letters", "train", "images")).write_bytes(encode_idx(imgs))
    (folder / member_name("letters", "train", "labels")).write_bytes(encode_idx(labels + 1)[:-5])
    assert sorted(p.name for p in folder.iterdir())[-1] == member_name("letters", "train", "labels")
    assert main(["data", "import", str(folder), "--data-dir", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert "truncated" in err and member_name("letters", "train", "labels") in err
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())
    not_zip = tmp_path / "gzip.zip"
    not_zip.write_bytes(b"PK\x03\x04 broken")
    assert main(["data", "import", str(not_zip), "--data-dir", str(tmp_path / "d")]) == 1


# ---------------------------------------------------------------- download over real HTTP


class _Server:
    """A real HTTP server on 127.0.0.1 that serves one payload, honours Range, and can misbehave."""

    def __init__(
        self,
        payload: bytes,
        content_type: str = "application/zip",
        cut_first_after: int | None = None,
        status: int | None = None,
    ):
        self.payload, self.content_type, self.cut_first_after = payload, content_type, cut_first_after
        self.status = status
        self.requests: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.requests.append(rng)
                if outer.status is not None:
                    self.send_error(outer.status)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                body = outer.payload[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Type", outer.content_type)
                self.send_header("Content-Length", str(len(body)))
                if rng:
                    self.send_header(
                        "Content-Range", f"bytes {start}-{len(outer.payload) - 1}/{len(outer.payload)}"
                    )
                self.end_headers()
                if outer.cut_first_after is not None and len(outer.requests) == 1:
                    self.wfile.write(body[: outer.cut_first_after])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # drop the connection mid-transfer
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/gzip.zip"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def archive():
    payload = make_archive()
    return payload, hashlib.sha256(payload).hexdigest()


def test_full_download_then_extract(tmp_path, archive):
    payload, digest = archive
    server = _Server(payload)
    try:
        dest = download(server.url, tmp_path / "gzip.zip", digest, len(payload), progress=False)
    finally:
        server.close()
    assert dest.read_bytes() == payload and not (tmp_path / "gzip.zip.part").exists()
    assert len(extract_split(dest, "letters", tmp_path)) == 5


def test_broken_transfer_is_resumed_with_range(tmp_path, archive):
    payload, digest = archive
    server = _Server(payload, cut_first_after=1000)
    try:
        dest = download(server.url, tmp_path / "gzip.zip", digest, len(payload), backoff=0.01, progress=False)
    finally:
        server.close()
    assert dest.read_bytes() == payload
    assert server.requests[0] is None and server.requests[1] == "bytes=1000-"


def test_partial_file_from_an_earlier_run_is_resumed(tmp_path, archive):
    payload, digest = archive
    (tmp_path / "gzip.zip.part").write_bytes(payload[:777])
    server = _Server(payload)
    try:
        download(server.url, tmp_path / "gzip.zip", digest, len(payload), progress=False)
    finally:
        server.close()
    assert server.requests == ["bytes=777-"]
    assert (tmp_path / "gzip.zip").read_bytes() == payload


def test_checksum_mismatch_is_rejected_and_not_installed(tmp_path, archive):
    payload, _ = archive
    server = _Server(payload)
    try:
        with pytest.raises(DataError, match="SHA-256 is .* expected"):
            download(server.url, tmp_path / "gzip.zip", "0" * 64, len(payload), progress=False)
    finally:
        server.close()
    assert not (tmp_path / "gzip.zip").exists() and not (tmp_path / "gzip.zip.part").exists()
    assert (tmp_path / "gzip.zip.rejected").exists()


def test_html_answer_is_rejected_with_advice(tmp_path, capsys):
    server = _Server(
        b"<!DOCTYPE html><html><body>This page has moved</body></html>", content_type="text/html"
    )
    try:
        code = main(["data", "fetch", "--url", server.url, "--data-dir", str(tmp_path)])
    finally:
        server.close()
    assert code == 1
    err = capsys.readouterr().err
    assert "HTML page" in err and "data import" in err
    assert not (tmp_path / "gzip.zip").exists()


def test_unreachable_server_fails_after_retries(tmp_path):
    with pytest.raises(DataError, match="failed after 2 tries"):
        download(
            "http://127.0.0.1:9/gzip.zip",
            tmp_path / "g.zip",
            None,
            None,
            retries=1,
            backoff=0.01,
            progress=False,
        )


def test_unresolvable_host_fails_at_once_with_advice(tmp_path):
    with pytest.raises(DataError, match="cannot resolve nonexistent.invalid .*data import"):
        download(
            "http://nonexistent.invalid/gzip.zip", tmp_path / "g.zip", None, None, backoff=30, progress=False
        )


def test_failed_download_says_whether_anything_arrived(tmp_path, archive):
    payload, digest = archive
    server = _Server(payload, status=503)
    try:
        with pytest.raises(DataError, match="HTTP 503.*nothing arrived") as exc:
            download(
                server.url, tmp_path / "g.zip", digest, len(payload), retries=1, backoff=0.01, progress=False
            )
        assert "keeps" not in str(exc.value)
    finally:
        server.close()
    server = _Server(payload, cut_first_after=1000)
    try:
        with pytest.raises(
            DataError, match=r"keeps the 1,000 bytes that arrived: run the same command again"
        ):
            download(server.url, tmp_path / "h.zip", digest, len(payload), retries=0, progress=False)
    finally:
        server.close()
