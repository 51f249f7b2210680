"""``avdf replica``: the studio corpus written in another corpus' exact native layout.

``avdf replica CORPUS --studio DIR [--fakes MANIFEST ...] --out DIR`` reads
the studio manifest (the real clips) and the manifests ``avdf generate``
wrote (the fakes), and writes them under the released file names, sheets and
split files of ``CORPUS`` (voxceleb2, fakeavceleb, idforge, faceforensics,
celebdf, kodf; and cmdfd, whose ``--studio`` is a ``avdf generate --recipe
cmdfd`` build, written in the authors' ``My_Test`` tree and lists): users
rehearse the real corpus' path (``avdf ingest CORPUS
--root ...``) before downloading it, and tests run the real adapters
unchanged. One module per corpus (``pipeline/replicas/<corpus>.py``, a pure
``plan(inputs)``), registered in ``pipeline.replicas.writer.REPLICAS``; the
writer makes the files (hard links where the layout takes the file as it is),
is deterministic and idempotent, and prints what it wrote, kept and skipped.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", help="voxceleb2, fakeavceleb, idforge, faceforensics, celebdf, kodf or cmdfd")
    parser.add_argument("--studio", required=True, type=Path,
                        help="the studio corpus folder (its manifest.parquet) or a manifest of real clips")
    parser.add_argument("--fakes", type=Path, nargs="+", action="extend", default=[], metavar="MANIFEST",
                        help="manifest(s) written by `avdf generate` (e.g. generated/fakeavceleb/manifest.parquet)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (the replica's root, or its parent "
                        "for fakeavceleb: FakeAVCeleb_v1.2/ is made inside)")
    parser.add_argument("--workers", type=int, default=4, help="files made at once (ffmpeg processes; default 4)")


def run(args: argparse.Namespace) -> int:
    from pipeline.replicas.writer import write_replica

    write_replica(args.corpus, args.studio, args.out, args.fakes, workers=args.workers)
    return 0
