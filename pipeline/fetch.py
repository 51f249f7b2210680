"""``avdf fetch``: bring a corpus onto disk.

``studio`` is generated here, offline (pipeline.studio); every other corpus
comes from a user-supplied folder, file:// or http(s):// source
(pipeline.download). Gated corpora are never scraped.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import load_section


@dataclass
class StudioParams:
    """Size of the built-in studio corpus."""

    identities: int = 20
    utterances: int = 3
    seed: int = 0


@dataclass
class FetchParams:
    """``fetch`` section: which corpus to bring and from where."""

    corpus: str = "studio"
    source: str | None = None  # folder, file:// or http(s):// URL for gated corpora
    studio: StudioParams = field(default_factory=StudioParams)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", help="studio (built in), voxceleb2, fakeavceleb, kodf, cmdfd")
    parser.add_argument("--out", required=True, type=Path, help="destination folder")
    parser.add_argument("--source", help="folder, file:// or http(s):// URL (gated corpora)")
    parser.add_argument("--checksums", type=Path, help="md5sum/sha256sum-style file of expected checksums")
    parser.add_argument("--identities", type=int, help="studio: number of identities")
    parser.add_argument("--utterances", type=int, help="studio: utterances per identity")
    parser.add_argument("--seed", type=int, help="studio: random seed")


def run(args: argparse.Namespace) -> int:
    params: FetchParams = load_section("fetch", args.params if Path(args.params).exists() else None)
    if args.corpus == "studio":
        from pipeline.studio import build_studio

        studio = params.studio
        build_studio(
            args.out,
            identities=args.identities if args.identities is not None else studio.identities,
            utterances=args.utterances if args.utterances is not None else studio.utterances,
            seed=args.seed if args.seed is not None else studio.seed,
        )
        return 0
    from pipeline.download import fetch_corpus

    fetch_corpus(args.corpus, args.source or params.source, args.out, checksums=args.checksums)
    return 0
