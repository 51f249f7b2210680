"""``avdf preprocess``: decode, track the face, crop, resample audio, on Ray (issue #4)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from pipeline.errors import NotImplementedYet


@dataclass
class PreprocessParams:
    """``preprocess`` section."""

    face_backend: str = "mediapipe"
    face_size: int = 224
    gray_face_size: int = 112
    mouth_size: int = 96


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, help="input Clip manifest")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--address", help="Ray cluster address (default: start a local Ray)")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("avdf preprocess is not implemented yet (issue #4)")
