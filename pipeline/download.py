"""Bring a real corpus onto disk: local folders, file:// and http(s):// sources.

``fetch_corpus(corpus, source, out)`` is what ``avdf fetch`` calls for every
corpus except the built-in studio one. The steps, each idempotent:

1. **get** every file of the source into ``out``:
   - a local folder (or ``file://`` folder) is mirrored file by file with
     *hard links* where ``out`` is on the same filesystem (no extra space, and
     the mirror survives the source being moved), and byte copies otherwise;
   - a local file (or ``file://`` file) is copied the same way;
   - an ``http(s)://`` URL is downloaded to ``<name>.part`` with HTTP Range
     resume and retries, then renamed; a text file of URLs (``*.urls`` /
     ``*.txt``, one ``URL [checksum]`` per line) downloads each URL.
2. **verify** checksums (MD5 or SHA-256) from the user's checksums file, the
   checksums in a URL list, or the published ones in ``KNOWN_CHECKSUMS``; a
   mismatch removes the download and is an error naming the file.
3. **assemble** multi-part archives (``name_partaa``, ``name_partab``, …) into
   one ``name.zip``.
4. **extract** zip / tar / tar.gz archives into ``out``, refusing any member
   that would land outside it (``..``, absolute paths, links out of the tree).

Gated corpora are never scraped and have no default URL: without a source,
the error says where to request access.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from pipeline.atomic import atomic_path, write_json_atomic
from pipeline.errors import AvdfError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20

# Where each gated corpus is requested. Only the access pages, never data URLs.
GATED: dict[str, str] = {
    "voxceleb2": "request access on https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox2.html "
    "(the download links come by e-mail)",
    "fakeavceleb": "fill in the request form linked from https://github.com/DASH-Lab/FakeAVCeleb "
    "(the download script comes by e-mail)",
    "kodf": "fill in the request form linked from https://moneybrain-research.github.io/kodf "
    "(Korean residents: AI-Hub)",
    "cmdfd": "follow the data instructions of https://github.com/ljj898/CMDFD-Dataset-and-Deepfake-Detection "
    "(the ECL paper's release)",
}

# Published checksums, by file name. Each value was checked against two public
# sources: clovaai/voxceleb_trainer lists/fileparts.txt + lists/files.txt and
# PaddleSpeech dataset/voxceleb/voxceleb2.py (they agree). No public source
# for the vox2_dev_mp4_parta* / vox2_test_mp4.zip checksums was found: pass
# them in a checksums file (see parse_checksums).
KNOWN_CHECKSUMS: dict[str, dict[str, str]] = {
    "voxceleb2": {
        "vox2_dev_aac_partaa": "md5:da070494c573e5c0564b1d11c3b20577",
        "vox2_dev_aac_partab": "md5:17fe6dab2b32b48abaf1676429cdd06f",
        "vox2_dev_aac_partac": "md5:1de58e086c5edf63625af1cb6d831528",
        "vox2_dev_aac_partad": "md5:5a043eb03e15c5a918ee6a52aad477f9",
        "vox2_dev_aac_partae": "md5:cea401b624983e2d0b2a87fb5d59aa60",
        "vox2_dev_aac_partaf": "md5:fc886d9ba90ab88e7880ee98effd6ae9",
        "vox2_dev_aac_partag": "md5:d160ecc3f6ee3eed54d55349531cb42e",
        "vox2_dev_aac_partah": "md5:6b84a81b9af72a9d9eecbb3b1f602e65",
        "vox2_dev_aac.zip": "md5:bbc063c46078a602ca71605645c2a402",
        "vox2_test_aac.zip": "md5:0d2b3ea430a821c33263b5ea37ede312",
    },
}

# Names of a checksums file that fetch picks up by itself (in the source folder
# or in ``out``), in md5sum/sha256sum format or "NAME HEX" lines.
CHECKSUM_FILES = ("checksums.txt", "CHECKSUMS", "MD5SUMS", "SHA256SUMS", "md5sums.txt", "sha256sums.txt")

_PART_RE = re.compile(r"^(?P<base>.+?)_?part(?P<suffix>[a-z]{2})$")
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_HEX_RE = re.compile(r"^(?:(md5|sha256):)?([0-9a-fA-F]{32}|[0-9a-fA-F]{64})$")


class DownloadError(AvdfError):
    """A source that cannot be fetched, a checksum mismatch or an unsafe archive."""


class ChecksumError(DownloadError):
    pass


class UnsafeArchiveError(DownloadError):
    pass


# --------------------------------------------------------------------------- checksums


@dataclass(frozen=True)
class Checksum:
    algorithm: str  # "md5" or "sha256"
    hexdigest: str

    @classmethod
    def parse(cls, text: str, where: str = "checksum") -> "Checksum":
        m = _HEX_RE.match(text.strip())
        if not m:
            raise DownloadError(f"{where}: {text!r} is not an MD5 (32 hex) or SHA-256 (64 hex) checksum")
        algo = m.group(1) or ("md5" if len(m.group(2)) == 32 else "sha256")
        expected_len = 32 if algo == "md5" else 64
        if len(m.group(2)) != expected_len:
            raise DownloadError(f"{where}: {text!r} has the wrong length for {algo}")
        return cls(algo, m.group(2).lower())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"


def hash_file(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def parse_checksums(text: str, where: str = "checksums") -> dict[str, Checksum]:
    """Read ``HEX  NAME`` (md5sum / sha256sum output) or ``NAME HEX`` lines; ``#`` comments."""
    out: dict[str, Checksum] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        if len(tokens) != 2:
            raise DownloadError(f"{where} line {n}: expected 'HEX NAME' or 'NAME HEX', got {line!r}")
        a, b = tokens
        if _HEX_RE.match(a):
            digest, name = a, b
        elif _HEX_RE.match(b):
            name, digest = a, b
        else:
            raise DownloadError(f"{where} line {n}: neither field is an MD5/SHA-256 checksum: {line!r}")
        out[PurePosixPath(name.lstrip("*")).name] = Checksum.parse(digest, f"{where} line {n}")
    return out


def load_checksums(source: str | Path | Mapping[str, str] | None) -> dict[str, Checksum]:
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return {k: Checksum.parse(v, f"checksum of {k}") for k, v in source.items()}
    path = Path(source)
    if not path.is_file():
        raise DownloadError(f"{path}: checksums file does not exist")
    return parse_checksums(path.read_text(), str(path))


def verify(path: Path, expected: Checksum) -> None:
    """Raise ChecksumError (and delete ``path``) when its digest differs."""
    got = hash_file(path, expected.algorithm)
    if got != expected.hexdigest:
        path.unlink(missing_ok=True)
        raise ChecksumError(
            f"{path.name}: {expected.algorithm} checksum mismatch (expected {expected.hexdigest}, got {got}); "
            "the file was removed — check the source URL and the checksum, then fetch again"
        )


def _verified_stamp(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified")


def verify_once(path: Path, expected: Checksum) -> bool:
    """Verify ``path`` unless a stamp says this exact file already passed; True if hashed now.

    Hashing a 30 GB part takes minutes, so a re-run trusts a stamp that
    records the checksum, size and mtime the file had when it passed.
    """
    stamp = _verified_stamp(path)
    st = path.stat()
    record = f"{expected} {st.st_size} {st.st_mtime_ns}"
    if stamp.exists() and stamp.read_text().strip() == record:
        return False
    verify(path, expected)
    stamp.write_text(record + "\n")
    return True


# --------------------------------------------------------------------------- sources


@dataclass
class FetchSummary:
    corpus: str
    out: Path
    downloaded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    linked: int = 0
    copied: int = 0
    verified: list[str] = field(default_factory=list)
    assembled: list[str] = field(default_factory=list)
    extracted: list[str] = field(default_factory=list)
    bytes_downloaded: int = 0

    def line(self) -> str:
        return (
            f"fetch {self.corpus}: {len(self.downloaded)} downloaded ({_human(self.bytes_downloaded)}), "
            f"{len(self.present)} already present, {self.linked} linked, {self.copied} copied, "
            f"{len(self.verified)} checksums verified, {len(self.assembled)} archives assembled, "
            f"{len(self.extracted)} extracted -> {self.out}"
        )


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _local_path(source: str) -> Path | None:
    """The local path a source names (plain path or file:// URL), else None."""
    parsed = urlparse(source)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise DownloadError(f"{source}: file:// URLs must name a local path (file:///abs/path)")
        return Path(unquote(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive
        raise DownloadError(f"{source}: unsupported source scheme {parsed.scheme!r} (use a folder, file:// or http(s)://)")
    return Path(source).expanduser()


def _url_name(url: str) -> str:
    """The file name a URL downloads to: the last path segment, or a ``file=`` query value."""
    parsed = urlparse(url)
    name = PurePosixPath(unquote(parsed.path)).name
    for part in parsed.query.split("&"):
        key, _, value = part.partition("=")
        if key == "file" and value:
            name = PurePosixPath(unquote(value)).name
    if not name or name in (".", ".."):
        raise DownloadError(f"{url}: cannot tell a file name from this URL")
    return name


def read_url_list(path: Path) -> list[tuple[str, Checksum | None]]:
    """``URL [checksum]`` per line; ``#`` starts a comment."""
    entries = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        # Whole-line comments only: '#' may be part of a URL.
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tokens = line.split()
        if urlparse(tokens[0]).scheme not in ("http", "https", "file"):
            raise DownloadError(f"{path} line {n}: {tokens[0]!r} is not an http(s):// or file:// URL")
        if len(tokens) > 2:
            raise DownloadError(f"{path} line {n}: expected 'URL [checksum]', got {line!r}")
        checksum = Checksum.parse(tokens[1], f"{path} line {n}") if len(tokens) == 2 else None
        entries.append((tokens[0], checksum))
    if not entries:
        raise DownloadError(f"{path}: URL list has no URLs")
    return entries


def _is_url_list(path: Path) -> bool:
    if path.suffix not in (".urls", ".txt") or not path.is_file() or path.stat().st_size > 1 << 20:
        return False
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return urlparse(line.split()[0]).scheme in ("http", "https", "file")
    return False


# --------------------------------------------------------------------------- http


def download(
    url: str,
    dest: Path,
    expected: Checksum | None = None,
    *,
    retries: int = 5,
    timeout: float = 60.0,
    backoff_s: float = 0.5,
    progress: bool = True,
) -> int:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming with HTTP Range.

    A dropped connection is retried (``retries`` times, exponential backoff)
    from where the ``.part`` file ends; a server that ignores Range restarts
    from zero. The file gets its final name only once complete and, when
    ``expected`` is given, once its checksum matches. Returns bytes fetched.
    """
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    fetched = 0
    attempt = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": "avdf-fetch", "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                total, mode = _resume_plan(resp, have, url)
                if mode == "wb":
                    have = 0
                with open(part, mode) as f, tqdm(
                    total=total, initial=have, unit="B", unit_scale=True, desc=dest.name,
                    disable=not progress, leave=False,
                ) as bar:
                    while True:
                        block = resp.read(_CHUNK)
                        if not block:
                            break
                        f.write(block)
                        fetched += len(block)
                        bar.update(len(block))
            size = part.stat().st_size
            if total is not None and size < total:
                raise ConnectionError(f"connection closed at byte {size} of {total}")
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:
                # The .part already holds every byte (Range starts past the end).
                break
            if exc.code in (401, 403, 404, 410):
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason} (is the link still valid?)") from None
            error: Exception = exc
        except (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError, OSError) as exc:
            error = exc
        attempt += 1
        if attempt > retries:
            raise DownloadError(
                f"{url}: download failed after {retries} retries ({error}); "
                f"rerun to resume from {part.name} ({_human(part.stat().st_size if part.exists() else 0)})"
            ) from None
        log.info("%s: %s; resuming (retry %d of %d)", dest.name, error, attempt, retries)
        time.sleep(min(backoff_s * 2 ** (attempt - 1), 30.0))
    if expected is not None:
        try:
            verify(part, expected)
        except ChecksumError as exc:
            raise ChecksumError(str(exc).replace(part.name, dest.name, 1)) from None
    os.replace(part, dest)
    if expected is not None:
        st = dest.stat()
        _verified_stamp(dest).write_text(f"{expected} {st.st_size} {st.st_mtime_ns}\n")
    return fetched


def _resume_plan(resp, have: int, url: str) -> tuple[int | None, str]:
    """(total size or None, file mode) from the response to a maybe-ranged GET."""
    length = resp.headers.get("Content-Length")
    if resp.status == 206:
        content_range = resp.headers.get("Content-Range", "")
        m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range)
        if not m or int(m.group(1)) != have:
            raise DownloadError(f"{url}: server answered Range {have}- with {content_range!r}")
        total = int(m.group(3)) if m.group(3) != "*" else None
        return total, "ab"
    # 200: a full body (the server ignored Range, or there was nothing to resume).
    return (int(length) if length is not None else None), "wb"


# --------------------------------------------------------------------------- local copies


def _link_or_copy(src: Path, dest: Path) -> str:
    """Hard-link ``src`` to ``dest`` (same filesystem) or copy it; 'linked' or 'copied'."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(dest) as tmp:
            tmp.unlink()
            os.link(src, tmp)
        return "linked"
    except OSError:
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
        return "copied"


def _same_file(src: Path, dest: Path) -> bool:
    if not dest.exists():
        return False
    a, b = src.stat(), dest.stat()
    return (a.st_ino == b.st_ino and a.st_dev == b.st_dev) or (a.st_size == b.st_size and a.st_mtime_ns <= b.st_mtime_ns)


def mirror_folder(src: Path, out: Path, summary: FetchSummary, progress: bool = True) -> list[Path]:
    """Mirror every file under ``src`` into ``out``; return the top-level files (maybe archives)."""
    from tqdm import tqdm

    inside = out.resolve()
    # ``out`` may sit inside ``src``: never mirror the mirror.
    files = sorted(
        p for p in src.rglob("*")
        if p.is_file() and not p.name.endswith(".part") and not p.resolve().is_relative_to(inside)
    )
    top: list[Path] = []
    for f in tqdm(files, desc=f"mirror {src.name}", unit="file", disable=not progress, leave=False):
        rel = f.relative_to(src)
        dest = out / rel
        if _same_file(f, dest):
            summary.present.append(str(rel))
        else:
            how = _link_or_copy(f, dest)
            setattr(summary, how, getattr(summary, how) + 1)
        if len(rel.parts) == 1:
            top.append(dest)
    return top


# --------------------------------------------------------------------------- archives


def assemble_parts(files: Iterable[Path], out: Path, checksums: Mapping[str, Checksum], summary: FetchSummary) -> list[Path]:
    """Concatenate ``X_partaa``, ``X_partab``, … into ``X.zip``; return the assembled archives."""
    groups: dict[str, list[Path]] = {}
    for f in files:
        m = _PART_RE.match(f.name)
        if m:
            groups.setdefault(m.group("base"), []).append(f)
    assembled = []
    for base, parts in sorted(groups.items()):
        parts.sort(key=lambda p: _PART_RE.match(p.name).group("suffix"))  # type: ignore[union-attr]
        suffixes = [_PART_RE.match(p.name).group("suffix") for p in parts]  # type: ignore[union-attr]
        expected = [chr(ord("a") + i // 26) + chr(ord("a") + i % 26) for i in range(len(parts))]
        if suffixes != expected:
            missing = sorted(set(expected) - set(suffixes)) or [f"a part after {suffixes[-1]}"]
            raise DownloadError(f"{base}: multi-part archive has gaps (have {suffixes}, missing {missing})")
        name = base if any(base.endswith(s) for s in _ARCHIVE_SUFFIXES) else base + ".zip"
        target = out / name
        stamp = target.with_name(f".{target.name}.assembled")
        record = " ".join(f"{p.name}:{p.stat().st_size}" for p in parts)
        if target.exists() and stamp.exists() and stamp.read_text().strip() == record:
            summary.present.append(name)
        else:
            with atomic_path(target) as tmp, open(tmp, "wb") as w:
                for p in parts:
                    with open(p, "rb") as r:
                        shutil.copyfileobj(r, w, _CHUNK)
            stamp.write_text(record + "\n")
            summary.assembled.append(name)
        if name in checksums and verify_once(target, checksums[name]):
            summary.verified.append(name)
        assembled.append(target)
    return assembled


def is_archive(path: Path) -> bool:
    return path.name.endswith(_ARCHIVE_SUFFIXES)


def _check_member(name: str, out: Path, archive: Path) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{archive.name}: refusing member {name!r}: it would be written outside {out}")
    target = (out / pure).resolve()
    if not target.is_relative_to(out.resolve()):
        raise UnsafeArchiveError(f"{archive.name}: refusing member {name!r}: it resolves outside {out}")
    return target


def extract(archive: Path, out: Path) -> None:
    """Extract a zip / tar / tar.gz into ``out`` after checking every member is safe.

    Every member name is checked before anything is written, so an unsafe
    archive leaves nothing behind. Tar links must point inside ``out``;
    devices and FIFOs are refused.
    """
    out.mkdir(parents=True, exist_ok=True)
    if archive.name.endswith(".zip"):
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile as exc:
            raise DownloadError(f"{archive.name}: not a readable zip archive ({exc})") from None
        with zf:
            for info in zf.infolist():
                _check_member(info.filename, out, archive)
                mode = (info.external_attr >> 16) & 0o170000
                if mode == 0o120000:
                    raise UnsafeArchiveError(f"{archive.name}: refusing symbolic link member {info.filename!r}")
            zf.extractall(out)
        return
    try:
        tf = tarfile.open(archive)
    except tarfile.TarError as exc:
        raise DownloadError(f"{archive.name}: not a readable tar archive ({exc})") from None
    with tf:
        for member in tf.getmembers():
            target = _check_member(member.name, out, archive)
            if member.isdev() or member.isfifo():
                raise UnsafeArchiveError(f"{archive.name}: refusing device/FIFO member {member.name!r}")
            if member.issym() or member.islnk():
                link = PurePosixPath(member.linkname)
                base = target.parent if member.issym() else out.resolve()
                resolved = (base / link).resolve() if not link.is_absolute() else Path(link)
                if link.is_absolute() or not resolved.is_relative_to(out.resolve()):
                    raise UnsafeArchiveError(
                        f"{archive.name}: refusing link {member.name!r} -> {member.linkname!r}: it points outside {out}"
                    )
        # Python's own "data" filter as a second line of defence.
        tf.extractall(out, filter="data")


def extract_once(archive: Path, out: Path, summary: FetchSummary) -> None:
    stamp = out / f".{archive.name}.extracted"
    st = archive.stat()
    record = f"{st.st_size} {st.st_mtime_ns}"
    if stamp.exists() and stamp.read_text().strip() == record:
        summary.present.append(f"{archive.name} (extracted)")
        return
    log.info("extracting %s into %s", archive.name, out)
    extract(archive, out)
    stamp.write_text(record + "\n")
    summary.extracted.append(archive.name)


# --------------------------------------------------------------------------- entry point


def _discover_checksums(*folders: Path | None) -> dict[str, Checksum]:
    found: dict[str, Checksum] = {}
    for folder in folders:
        if folder is None or not folder.is_dir():
            continue
        for name in CHECKSUM_FILES:
            if (folder / name).is_file():
                found.update(load_checksums(folder / name))
    return found


def fetch_corpus(
    corpus: str,
    source: str | None,
    out: Path,
    *,
    checksums: str | Path | Mapping[str, str] | None = None,
    extract_archives: bool = True,
    retries: int = 5,
    progress: bool = True,
) -> FetchSummary:
    """Bring ``corpus`` from ``source`` (folder, file, file:// or http(s):// URL, URL list) into ``out``.

    ``checksums`` (a file or a name -> checksum mapping) adds to the
    published ``KNOWN_CHECKSUMS``; a checksums file named like
    ``CHECKSUM_FILES`` in the source folder or in ``out`` is read too.
    """
    out = Path(out)
    if not source:
        how = GATED.get(corpus)
        if how:
            raise DownloadError(
                f"{corpus} is a gated corpus: avdf never downloads it by itself. To get access, {how}; "
                f"then run `avdf fetch {corpus} --out {out} --source URL|FOLDER` with what you were given"
            )
        raise DownloadError(f"{corpus}: no --source given (a folder, file:// or http(s):// URL, or a list of URLs)")
    out.mkdir(parents=True, exist_ok=True)
    summary = FetchSummary(corpus=corpus, out=out)

    local = _local_path(source)
    known = {k: Checksum.parse(v) for k, v in KNOWN_CHECKSUMS.get(corpus, {}).items()}
    user = load_checksums(checksums)
    source_folder = local if local is not None and local.is_dir() else (local.parent if local is not None else None)
    table = {**known, **_discover_checksums(source_folder, out), **user}

    fetched: list[Path] = []
    if local is not None and not local.exists():
        raise DownloadError(f"{source}: source does not exist")
    if local is not None and local.is_dir():
        if local.resolve() == out.resolve():
            fetched = sorted(p for p in out.iterdir() if p.is_file())
        else:
            fetched = mirror_folder(local, out, summary, progress)
    elif local is not None and _is_url_list(local):
        for url, checksum in read_url_list(local):
            name = _url_name(url)
            fetched.append(_fetch_one(url, out / name, checksum or table.get(name), summary, retries, progress))
    elif local is not None:
        dest = out / local.name
        if _same_file(local, dest):
            summary.present.append(local.name)
        else:
            how = _link_or_copy(local, dest)
            setattr(summary, how, getattr(summary, how) + 1)
        fetched.append(dest)
    else:
        name = _url_name(source)
        fetched.append(_fetch_one(source, out / name, table.get(name), summary, retries, progress))

    for f in fetched:
        if f.name in table and f.name not in summary.downloaded and verify_once(f, table[f.name]):
            summary.verified.append(f.name)
    archives = assemble_parts(fetched, out, table, summary)
    archives += [f for f in fetched if is_archive(f) and not _PART_RE.match(f.name)]
    if extract_archives:
        for archive in archives:
            extract_once(archive, out, summary)
    write_json_atomic(out / ".avdf-fetch.json", {"corpus": corpus, "source": _redact(source), **_summary_dict(summary)})
    print(summary.line())
    return summary


def _fetch_one(url: str, dest: Path, expected: Checksum | None, summary: FetchSummary, retries: int, progress: bool) -> Path:
    local = _local_path(url)
    if local is not None:  # file:// entry of a URL list
        if not local.is_file():
            raise DownloadError(f"{url}: file does not exist")
        if not _same_file(local, dest):
            how = _link_or_copy(local, dest)
            setattr(summary, how, getattr(summary, how) + 1)
        else:
            summary.present.append(dest.name)
        return dest
    if dest.exists():
        if expected is None:
            summary.present.append(dest.name)
            return dest
        try:
            if verify_once(dest, expected):
                summary.verified.append(dest.name)
            summary.present.append(dest.name)
            return dest
        except ChecksumError:
            log.warning("%s: present but its checksum does not match (removed); downloading again", dest.name)
    summary.bytes_downloaded += download(url, dest, expected, retries=retries, progress=progress)
    summary.downloaded.append(dest.name)
    if expected is not None:
        summary.verified.append(dest.name)
    return dest


def _redact(source: str) -> str:
    """Drop query strings (download keys) and credentials before recording a URL."""
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        host = parsed.hostname or ""
        return f"{parsed.scheme}://{host}{parsed.path}"
    return source


def _summary_dict(summary: FetchSummary) -> dict:
    return {
        "downloaded": summary.downloaded,
        "present": summary.present,
        "linked": summary.linked,
        "copied": summary.copied,
        "verified": summary.verified,
        "assembled": summary.assembled,
        "extracted": summary.extracted,
        "bytes_downloaded": summary.bytes_downloaded,
    }
