"""``avdf score-localisation PRED.json --metadata META.json``: AV-Deepfake1M's AP and AR of fake-segment proposals.

    avdf score-localisation preds.json --metadata val_metadata.json            # AV-Deepfake1M
    avdf score-localisation preds.json --metadata metadata.json --split test   # LAV-DF

Not a ``submit`` option: submit scores video-level P(fake) against a manifest
under a protocol and writes leaderboard results; localisation is scored against
the corpus' own segment metadata and has no protocol, fold or results schema.
Metrics and conventions: ``benchmark.localisation``; files: ``benchmark.localisation_io``.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", type=Path, help="localisation JSON {file: [[confidence, start_s, end_s], ...]}")
    parser.add_argument("--metadata", required=True, type=Path,
                        help="ground truth: AV-Deepfake1M's {train,val}_metadata.json or LAV-DF's metadata.json")
    parser.add_argument("--field", help="segments field (default: fake_segments, or LAV-DF's fake_periods; "
                                        "visual_fake_segments / audio_fake_segments for one modality)")
    parser.add_argument("--split", help="keep only metadata entries of this split (LAV-DF: train, dev, test)")
    parser.add_argument("--out", type=Path, help="also write the metrics here as JSON")


def run(args: argparse.Namespace) -> int:
    from benchmark.localisation import score_localisation
    from benchmark.localisation_io import read_ground_truth
    from pipeline.atomic import write_json_atomic

    truth = read_ground_truth(args.metadata, args.field, args.split)
    result = score_localisation(args.predictions, truth)
    print(f"{args.predictions}: {result['videos']} videos, {result['fake_segments']} fake segments, "
          f"{result['proposals']} proposals")
    print("  " + "  ".join(f"AP@{t:g} {v:.4f}" for t, v in result["ap"].items()))
    print("  " + "  ".join(f"AR@{n} {v:.4f}" for n, v in result["ar"].items()))
    if args.out:
        write_json_atomic(args.out, {"ap": {f"{t:g}": v for t, v in result["ap"].items()},
                                     "ar": {str(n): v for n, v in result["ar"].items()},
                                     **{k: result[k] for k in ("videos", "fake_segments", "proposals")}})
    return 0
