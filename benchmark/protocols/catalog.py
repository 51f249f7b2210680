"""The protocol catalogue: the YAML files shipped in this package, by name and version."""
from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmark.protocols.selectors import Selector
from benchmark.protocols.spec import ProtocolFile, ProtocolSpec, fold_names, validate_spec
from benchmark.protocols.splitting import ClipsLike, ProtocolError, Splits, split_protocol
from pipeline.atomic import sha256_json
from pipeline.config import from_mapping
from pipeline.errors import ConfigError

DEFINITIONS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ProtocolInfo:
    name: str
    version: str
    family: str
    description: str
    corpora: tuple[str, ...]
    folds: tuple[str, ...]
    twin_of: str | None
    hash: str


class Protocol:
    """A loaded protocol: its spec, identity (name, version, content hash) and ``split``."""

    def __init__(self, spec: ProtocolSpec, family: str, source: Path) -> None:
        self.spec = spec
        self.family = spec.family or family
        self.source = source
        # The hash covers the whole definition (version included), so two files
        # that disagree while claiming the same version are told apart in metrics.json.
        self.hash = sha256_json(dataclasses.asdict(spec))

    name = property(lambda self: self.spec.name)
    version = property(lambda self: self.spec.version)
    description = property(lambda self: self.spec.description)

    @property
    def folds(self) -> list[str]:
        return fold_names(self.spec)

    @property
    def averages(self) -> dict[str, list[str]]:
        return dict(self.spec.averages)

    @property
    def categories(self) -> list[str]:
        return list(self.spec.categories)

    def info(self) -> ProtocolInfo:
        return ProtocolInfo(
            name=self.name,
            version=self.version,
            family=self.family,
            description=" ".join(self.description.split()),
            corpora=tuple(self.spec.corpora),
            folds=tuple(self.folds),
            twin_of=self.spec.twin_of,
            hash=self.hash,
        )

    def split(self, clips: ClipsLike, folds: Sequence[str] | None = None) -> Splits:
        """Train/val/test keys of every fold (or only ``folds``) for a manifest."""
        return split_protocol(self.spec, self.hash, clips, folds)

    def identity(self) -> dict[str, str]:
        """What metrics.json records about the protocol."""
        return {"name": self.name, "version": self.version, "hash": self.hash}

    def __repr__(self) -> str:
        return f"Protocol({self.name!r}, version={self.version!r})"


def load_protocol_file(path: str | Path) -> list[Protocol]:
    """Load and strictly validate one protocol file (a family)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: protocol file does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    where = path.name
    pf = from_mapping(ProtocolFile, data, where)
    protocols = []
    names: set[tuple[str, str]] = set()
    for i, spec in enumerate(pf.protocols):
        here = f"{where}: protocols[{i}] ({spec.name})"
        validate_spec(spec, here)
        if (spec.name, spec.version) in names:
            raise ConfigError(f"{here}: {spec.name} version {spec.version} is defined twice")
        names.add((spec.name, spec.version))
        if pf.methods:
            _check_methods(spec, pf, here)
        protocols.append(Protocol(spec, pf.family, path))
    return protocols


def _check_methods(spec: ProtocolSpec, pf: ProtocolFile, where: str) -> None:
    """In a file with a method table, every method a selector names must be in it."""
    sels = [Selector(spec.select, "select")]
    sels += [Selector(s, n) for n, s in spec.categories.items()]
    lo, cross = spec.split.leave_one_out, spec.split.cross
    if lo is not None:
        sels.append(Selector(lo.real, "real"))
    if cross is not None:
        sels.append(Selector(cross.train, "train"))
        sels += [Selector(t.fake, n) for n, t in cross.tests.items()]
    sels += [Selector(t.fake, n) for n, t in spec.transfer.items()]
    used = set().union(*(s.values_of("method") for s in sels)) - {"real"}
    unknown = sorted(used - set(pf.methods))
    if unknown:
        raise ConfigError(f"{where}: method(s) {unknown} are not in the file's `methods` table {sorted(pf.methods)}")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


@functools.lru_cache(maxsize=1)
def _catalogue() -> dict[str, list[Protocol]]:
    """name -> protocols of every version, oldest first."""
    found: dict[str, list[Protocol]] = {}
    for path in sorted(DEFINITIONS.glob("*.yaml")):
        for p in load_protocol_file(path):
            found.setdefault(p.name, []).append(p)
    for name, versions in found.items():
        versions.sort(key=lambda p: _version_key(p.version))
        seen = [p.version for p in versions]
        if len(set(seen)) != len(seen):
            files = sorted({str(p.source.name) for p in versions})
            raise ConfigError(f"protocol {name} has a version defined twice (files {files})")
    return found


def list_protocols() -> list[ProtocolInfo]:
    """Every shipped protocol version (name, version, family, description, ...)."""
    return [p.info() for name in sorted(_catalogue()) for p in _catalogue()[name]]


def load_protocol(name: str, version: str | None = None) -> Protocol:
    """The protocol ``name`` at ``version`` (the newest when None)."""
    catalogue = _catalogue()
    if name not in catalogue:
        close = difflib.get_close_matches(name, list(catalogue), n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ProtocolError(f"unknown protocol {name!r}{hint} (known: {sorted(catalogue)})")
    versions = catalogue[name]
    if version is None:
        return versions[-1]
    for p in versions:
        if p.version == version:
            return p
    raise ProtocolError(
        f"protocol {name} has no version {version!r}; available: {[p.version for p in versions]}"
    )


def listing_rows(clips: ClipsLike | None = None) -> list[tuple[str, str, str]]:
    """Rows for ``avdf ls protocols``: (name, "vVERSION family: folds", origin).

    With a manifest, each fold shows its train/val/test sizes; a fold the
    manifest cannot fill (e.g. no KoDF clips) shows why instead.
    """
    rows = []
    for info in list_protocols():
        protocol = load_protocol(info.name, info.version)
        if clips is None:
            detail = ", ".join(info.folds)
        else:
            cells = []
            for fold in info.folds:
                try:
                    sizes = protocol.split(clips, folds=[fold]).sizes()[fold]
                    cells.append(f"{fold} {sizes['train']}/{sizes['val']}/{sizes['test']}")
                except ProtocolError as exc:
                    cells.append(f"{fold} n/a ({str(exc).split(': ', 1)[-1][:60]})")
            detail = "train/val/test " + ", ".join(cells)
        origin = f"twin of {info.twin_of}" if info.twin_of else f"{','.join(info.corpora)}"
        rows.append((info.name, f"v{info.version} {info.family}: {detail}", origin))
    return rows
