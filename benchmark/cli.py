"""The ``avdf`` command: one subcommand per DVC stage, plus probe, ls and bench.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; this file only wires them and turns user-facing errors
into one clear line (a traceback only with ``--debug``).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from pipeline.errors import AvdfError

# subcommand -> (module, one-line help). Stage names match params.yaml and dvc.yaml.
COMMANDS: dict[str, tuple[str, str]] = {
    "fetch": ("pipeline.fetch", "bring a corpus onto disk (the built-in studio corpus, a folder or a URL)"),
    "ingest": ("pipeline.ingest", "turn a corpus' native layout into a Clip manifest"),
    "preprocess": ("pipeline.preprocess", "decode, find and crop faces, resample audio (Ray stage)"),
    "generate": ("generators.stage", "forge fakes with the generators of a recipe (Ray stage)"),
    "shard": ("pipeline.shards", "write WebDataset shards of preprocessed clips"),
    "transcribe": ("detectors.ecl.transcripts", "transcribe the real clips of shards (words with times) for ECL's teachers"),
    "teach": ("benchmark.teach", "train ECL's ASR/VSR teacher on a fold's real training clips"),
    "train": ("benchmark.train", "train a detector under a protocol"),
    "perturb": ("benchmark.perturb", "perturb, preprocess and shard the test clips of chosen folds"),
    "evaluate": ("benchmark.evaluate", "score a trained detector on a protocol's test split"),
    "leaderboard": ("benchmark.leaderboard", "merge metrics into the leaderboard"),
    "detect": ("benchmark.detect", "score one video with a trained detector"),
    "submit": ("benchmark.submit", "validate and score a predictions file"),
    "score-localisation": ("benchmark.score_localisation", "AV-Deepfake1M's AP/AR of fake-segment proposals"),
    "ls": ("benchmark.listing", "list registered detectors, generators and protocols"),
    "probe": ("pipeline.probe_cmd", "print a media file's streams as JSON"),
    "bench": ("benchmark.perf", "measure speed and memory (decode, ...)"),
    "replica": ("pipeline.replicas", "write the studio corpus in another corpus' native layout"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ``only`` the arguments of that one subcommand.

    Every subcommand is listed either way (``avdf --help`` needs only the names
    and help lines above); ``only`` imports just the module that runs, so that
    ``avdf detect`` does not pay for importing every stage's dependencies
    (torch, Ray, pyarrow, whisper ...) to build parsers it never uses.
    """
    parser = argparse.ArgumentParser(
        prog="avdf", description="Audio-visual deepfake detection: data pipeline and benchmark suite."
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and third-party logs")
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if only is None or name == only:
            importlib.import_module(module).add_arguments(p)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first word that is one, past the global options)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--params":
            skip = True  # its value, which could be spelled like a command
        elif arg in COMMANDS:
            return arg
        elif not arg.startswith("-"):
            return None  # not a command: let argparse report it
    return None


def main(argv: Sequence[str] | None = None) -> int:
    own_process = argv is None  # the console script, not a caller that goes on after main() returns
    argv = sys.argv[1:] if argv is None else list(argv)
    # No command on the line (``avdf --help``, a typo): every parser is cheap to list, none is built.
    parser = build_parser(only=_command_in(argv) or "")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format="%(message)s")
    module = importlib.import_module(args._module)
    try:
        code = int(module.run(args) or 0)
    except AvdfError as exc:
        if args.debug:
            raise
        print(f"avdf {args.command}: error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print(f"avdf {args.command}: interrupted", file=sys.stderr)
        code = 130
    if own_process and getattr(module, "EXIT_WITHOUT_TEARDOWN", False):
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """End the process without finalising its modules.

    Tearing down torch, transformers and mediapipe at interpreter exit takes
    about as long as scoring a clip (measured ~0.7-1.5 s on 2 cores) and does
    nothing a one-shot command needs: a command opts in with a module-level
    ``EXIT_WITHOUT_TEARDOWN = True`` once it has cleaned up after itself (its
    temporary files are gone and its outputs are written; here the streams are
    flushed and the log handlers closed).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
