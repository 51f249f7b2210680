"""``avdf ls``: what is registered — detectors, generators, protocols."""
from __future__ import annotations

import argparse

from detectors.registry import DETECTORS
from generators.registry import GENERATORS

KINDS = ("detectors", "generators", "protocols")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", choices=KINDS, help="only this kind (default: all)")
    parser.add_argument("--manifest", help="show each protocol's split sizes on this manifest")


def _rows(kind: str, manifest: str | None) -> list[tuple[str, str, str]]:
    if kind == "detectors":
        return DETECTORS.describe()
    if kind == "generators":
        return GENERATORS.describe()
    from benchmark.protocols import listing_rows

    return listing_rows(manifest)


def run(args: argparse.Namespace) -> int:
    for kind in [args.kind] if args.kind else KINDS:
        rows = _rows(kind, args.manifest)
        print(f"{kind} ({len(rows)}):")
        for name, target, origin in rows:
            print(f"  {name:<24} {target}  [{origin}]")
        if not rows:
            print("  (none registered)")
    return 0
