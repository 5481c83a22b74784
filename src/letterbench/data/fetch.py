"""Getting EMNIST onto disk: download the official archive, or import files the user already has.

Downloads go to ``<name>.part`` and are resumed with HTTP Range requests; only a
file whose SHA-256 matches is renamed to its final name. Extraction reads only
the expected member names (no path from the archive is ever used as a path) and
writes every file atomically after checking it parses as IDX.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

from tqdm import tqdm

from letterbench.core.errors import DataError
from letterbench.core.fsutil import atomic_write_bytes, ensure_folder
from letterbench.data.emnist import (
    ARCHIVE_SHA256,
    ARCHIVE_SIZE,
    KINDS,
    PARTS,
    SPLITS,
    find_member,
    mapping_name,
    member_name,
    parse_mapping,
    split_info,
)
from letterbench.data.idx import decompress, encode_idx, parse_idx

CHUNK = 1 << 20
_MEMBER_RE = re.compile(
    r"^emnist-(?P<split>[a-z]+)-(?P<part>train|test)-(?P<kind>images-idx3|labels-idx1)-ubyte(?P<gz>\.gz)?$"
)


class _Transient(Exception):
    """A failure worth retrying: a dropped connection, a timeout, a 5xx answer."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _html_error(url: str) -> DataError:
    return DataError(
        f"{url} answered with an HTML page, not the EMNIST archive (the old itl.nist.gov address does this); "
        "use the default --url, or download gzip.zip in a browser and run `letterbench data import gzip.zip`"
    )


def _fetch_into(url: str, part: Path, size: int | None, timeout: float, progress: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    if size is not None and have == size:
        return
    response = _open(url, have, size, timeout)
    if response is None:  # the server says the file is complete
        return
    with response:
        if "text/html" in response.headers.get("Content-Type", ""):
            raise _html_error(url)
        if response.status != 206:  # the server ignored Range: start from byte 0
            have = 0
        total = size or (have + int(response.headers.get("Content-Length", 0)) or None)
        _copy(response, url, part, have, total, progress)
    got = part.stat().st_size
    if size is not None and got < size:
        raise _Transient(f"got {got:,} of {size:,} bytes")


def _open(url: str, have: int, size: int | None, timeout: float):
    """The server's answer to a request from byte ``have`` on; None where it says nothing is left.
    A server error or a broken connection is ``_Transient`` (retried); the rest one clear error."""
    request = urllib.request.Request(url, headers={"User-Agent": "letterbench"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and size is not None and have == size:
            return None
        if exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise DataError(f"{url}: the server answered HTTP {exc.code} {exc.reason}; check --url") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, socket.gaierror):  # no DNS answer: offline, retrying will not help
            host = urllib.parse.urlparse(url).hostname
            raise DataError(
                f"cannot resolve {host} ({reason.strerror}); this machine looks offline. Download gzip.zip "
                "on a machine with internet and run `letterbench data import gzip.zip`"
            ) from None
        raise _Transient(str(reason)) from None


def _copy(response, url: str, part: Path, have: int, total: int | None, progress: bool) -> None:
    """The answer's bytes appended to ``part`` (written afresh from byte 0), with a progress bar on
    a terminal; an HTML page instead of the archive is refused."""
    bar = tqdm(
        total=total,
        initial=have,
        unit="B",
        unit_scale=True,
        disable=not progress or not sys.stderr.isatty(),
        desc=part.name,
    )
    with open(part, "ab" if have else "wb") as out, bar:
        first = not have
        try:
            while block := response.read(CHUNK):
                if first and block.lstrip()[:1] == b"<":
                    raise _html_error(url)
                first = False
                out.write(block)
                bar.update(len(block))
        except (http.client.IncompleteRead, TimeoutError, ConnectionError, OSError) as exc:
            raise _Transient(f"connection broke off: {exc}") from None


def download(
    url: str,
    dest: Path,
    sha256: str | None = ARCHIVE_SHA256,
    size: int | None = ARCHIVE_SIZE,
    retries: int = 5,
    backoff: float = 2.0,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` with resume, retries and checksum verification."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise DataError(f"--url {url!r}: not a web address; give an http:// or https:// URL")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch_into(url, part, size, timeout, progress)
            break
        except _Transient as exc:
            if attempt == retries:
                kept = part.stat().st_size if part.exists() else 0
                raise DataError(
                    f"download of {url} failed after {retries + 1} tries ({exc}); "
                    + (
                        f"{part} keeps the {kept:,} bytes that arrived: run the same command again to resume"
                        if kept
                        else "nothing arrived: check the address and the connection, then run the same command again"
                    )
                ) from None
            time.sleep(backoff * 2**attempt)
    if sha256 is not None:
        digest = sha256_file(part)
        if digest != sha256:
            rejected = part.with_name(dest.name + ".rejected")
            os.replace(part, rejected)
            raise DataError(
                f"{url}: the download's SHA-256 is {digest}, expected {sha256}; it was moved to {rejected} "
                "and will not be used. Run again to download afresh, or import a verified copy"
            )
    os.replace(part, dest)
    return dest


def _check_member(raw: bytes, name: str, split: str, kind: str) -> bytes:
    array = parse_idx(raw, name)
    if kind == "images" and (array.ndim != 3 or array.shape[1:] != (28, 28)):
        raise DataError(f"{name}: expected 28x28 images, found an array of shape {array.shape}")
    if kind == "labels" and array.ndim != 1:
        raise DataError(f"{name}: expected labels (1-D), found an array of shape {array.shape}")
    info = SPLITS[split]
    low, high = info.label_offset, info.num_classes - 1 + info.label_offset
    if kind == "labels" and len(array) and not low <= int(array.min()) <= int(array.max()) <= high:
        bad = int(array.min()) if int(array.min()) < low else int(array.max())
        raise DataError(f"{name}: label {bad} is out of range for split {split} (labels run {low}..{high})")
    return raw if raw[:2] == b"\x1f\x8b" else encode_idx(array)


def _check_result(new: dict[str, bytes], data_dir: Path, source: str) -> None:
    """Refuse an import whose result would not load: each part's images and labels must hold the
    same number of items, whether both are new or one is already in ``data_dir``; a mapping file
    must list the split's classes. Called before anything is written."""
    for split in {m["split"] for m in map(_MEMBER_RE.match, new) if m}:
        for part in PARTS:
            counts = {}
            for kind in KINDS:
                name = member_name(split, part, kind)
                counts[kind] = _count(new[name], name) if name in new else _existing_count(data_dir, name)
            if None not in counts.values() and counts["images"] != counts["labels"]:
                raise DataError(
                    f"importing {source} into {data_dir} would pair {counts['images']:,} {split} {part} images "
                    f"with {counts['labels']:,} labels; import the images and labels that belong together "
                    "(nothing was imported)"
                )
    for name, raw in new.items():
        if name.endswith("-mapping.txt"):
            split = name.removeprefix("emnist-").removesuffix("-mapping.txt")
            try:
                parse_mapping(raw.decode(), split_info(split), f"{source}: {name}")
            except UnicodeDecodeError:
                raise DataError(
                    f"{source}: {name} is not a text mapping file (nothing was imported)"
                ) from None


def _count(raw: bytes, name: str) -> int:
    return len(parse_idx(raw, name))


def _existing_count(data_dir: Path, name: str) -> int | None:
    """Items in the member already in ``data_dir``; None where there is none, or it is unreadable
    (the import may be what repairs it)."""
    path = find_member(data_dir, name)
    try:
        return None if path is None else len(parse_idx(decompress(path.read_bytes(), str(path)), str(path)))
    except (DataError, OSError):
        return None


def extract_split(zip_path: Path, split: str, data_dir: Path) -> list[Path]:
    """Extract one split's members from the official archive, checking each."""
    split_info(split)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(
            f"{zip_path}: not a readable zip archive ({exc}); download it again or check the path"
        ) from None
    written: list[Path] = []
    checked: dict[str, bytes] = {}
    with archive:
        names = set(archive.namelist())
        wanted = [(member_name(split, part, kind), kind) for part in PARTS for kind in KINDS]
        for name, kind in wanted:
            inner = f"gzip/{name}"
            if inner not in names:
                raise DataError(f"{zip_path}: has no member {inner}; this is not the EMNIST gzip.zip archive")
            try:
                raw = archive.read(inner)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise DataError(f"{zip_path}: member {inner} is corrupt ({exc}); download it again") from None
            checked[name] = _check_member(raw, f"{zip_path}:{inner}", split, kind)
        mapping = f"gzip/{mapping_name(split)}"
        if mapping in names:
            checked[mapping_name(split)] = archive.read(mapping)
    _check_result(checked, data_dir, str(zip_path))
    # Every member passed its checks: only now does anything reach the data dir.
    ensure_folder(data_dir, "--data-dir")
    for name, data in checked.items():
        atomic_write_bytes(data_dir / name, data)
        written.append(data_dir / name)
    return written


def fetch(
    data_dir: Path, split: str, url: str, keep_archive: bool = True, progress: bool = True
) -> list[Path]:
    """Download the official archive into ``data_dir`` and extract ``split``."""
    ensure_folder(data_dir, "--data-dir")
    archive = download(url, data_dir / "gzip.zip", progress=progress)
    written = extract_split(archive, split, data_dir)
    if not keep_archive:
        archive.unlink()
    return written


def _prepare_file(path: Path) -> tuple[str, bytes]:
    """Check one user file and return (target name in the data dir, bytes to write)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if path.name.startswith("emnist-") and path.name.endswith("-mapping.txt"):
        return path.name, raw
    match = _MEMBER_RE.match(path.name)
    if not match or match["split"] not in SPLITS:
        raise DataError(
            f"{path}: not an EMNIST file name; expected names like emnist-letters-train-images-idx3-ubyte.gz "
            "(the official archive's member names, .gz optional)"
        )
    kind = "images" if match["kind"].startswith("images") else "labels"
    data = _check_member(raw, str(path), match["split"], kind)
    return member_name(match["split"], match["part"], kind), data


def import_path(path: Path, data_dir: Path, split: str = "letters") -> list[Path]:
    """Place a downloaded ``gzip.zip``, a folder of IDX files, or a single IDX file in ``data_dir``.

    Every file is checked first; nothing is written unless all of them pass.
    """
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file() and zipfile.is_zipfile(path):
        return extract_split(path, split, data_dir)
    if path.is_dir():
        files = sorted(
            p
            for folder in (path, path / "gzip")
            if folder.is_dir()
            for p in folder.iterdir()
            if _MEMBER_RE.match(p.name) or (p.name.startswith("emnist-") and p.name.endswith("-mapping.txt"))
        )
        if not files:
            raise DataError(
                f"{path}: holds no EMNIST IDX files (names like emnist-letters-train-images-idx3-ubyte.gz)"
            )
    else:
        files = [path]
    prepared = [_prepare_file(file) for file in files]
    _check_result(dict(prepared), data_dir, str(path))
    ensure_folder(data_dir, "--data-dir")
    written = []
    for name, data in prepared:
        atomic_write_bytes(data_dir / name, data)
        written.append(data_dir / name)
    return written
