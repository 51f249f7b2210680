"""Backbone forward time, parameters and peak memory: tiny and paper-size CLIP / Whisper (random init)."""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from benchmark.perf.measure import measure

SIZES = ("tiny", "paper")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES), help="(default: %(default)s)")
    parser.add_argument("--frames", type=int, default=16, help="CLIP batch = frames of one segment (default: %(default)s)")
    parser.add_argument("--audio-batch", type=int, default=1, help="Whisper windows per batch (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="timed forwards after one warm-up (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def _cases(sizes: list[str]) -> list[tuple[str, str, Callable[[], Any], str]]:
    """(name, size, builder, input kind) for every backbone to time."""
    from detectors.backbones.clip import load_clip_vision
    from detectors.backbones.whisper import load_whisper_encoder

    cases = []
    if "tiny" in sizes:
        cases += [("clip-tiny", "tiny", lambda: load_clip_vision(tiny=True), "image"),
                  ("whisper-tiny 30s", "tiny", lambda: load_whisper_encoder(tiny=True), "mel30"),
                  ("whisper-tiny 10240", "tiny", lambda: load_whisper_encoder(tiny=True), "mel64")]
    if "paper" in sizes:
        cases += [("clip ViT-B/16 (CAD)", "paper", lambda: load_clip_vision(preset="ViT-B/16"), "image"),
                  ("clip ViT-B/32 (AVPrompt)", "paper", lambda: load_clip_vision(preset="ViT-B/32"), "image"),
                  ("whisper-base 30s", "paper", lambda: load_whisper_encoder(preset="base"), "mel30"),
                  ("whisper-base 10240 (AVPrompt)", "paper", lambda: load_whisper_encoder(preset="base"), "mel64"),
                  ("whisper-small 30s (CAD)", "paper", lambda: load_whisper_encoder(preset="small"), "mel30")]
    return cases


def run(args: argparse.Namespace) -> int:
    import torch

    from detectors.backbones.params import count_parameters
    from detectors.backbones.whisper import encode

    # Import the model code up front so the first "build s" is the build, not the import.
    import transformers.models.clip.modeling_clip  # noqa: F401
    import transformers.models.whisper.modeling_whisper  # noqa: F401

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    inputs = {
        "image": lambda: torch.randn(args.frames, 3, 224, 224),
        "mel30": lambda: torch.randn(args.audio_batch, 80, 3000),
        "mel64": lambda: torch.randn(args.audio_batch, 80, 64),
    }
    batch_of = {"image": f"{args.frames} frames", "mel30": f"{args.audio_batch}x30 s", "mel64": f"{args.audio_batch}x64 mel"}
    print(f"device {device}, torch threads {torch.get_num_threads()}, {args.repeat} timed forwards after 1 warm-up")
    print(f"{'backbone':<30} {'params M':>9} {'build s':>8} {'batch':>10} {'ms/batch':>9} {'items/s':>8} {'peak MiB':>9}")
    for name, _size, build, kind in _cases(args.sizes):
        t0 = time.perf_counter()
        model = build().to(device).eval()
        built = time.perf_counter() - t0
        _, total = count_parameters(model)
        x = inputs[kind]().to(device)

        def forward() -> None:
            with torch.inference_mode():
                if kind == "image":
                    model(pixel_values=x)
                else:
                    encode(model, x, truncate=kind == "mel64")
            if device.type == "cuda":
                torch.cuda.synchronize()

        forward()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        with measure() as m:
            for _ in range(args.repeat):
                forward()
        ms = 1000 * m.seconds / args.repeat
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else m.peak_rss_mb
        items = x.shape[0] / (ms / 1000)
        print(f"{name:<30} {total / 1e6:>9.2f} {built:>8.2f} {batch_of[kind]:>10} {ms:>9.1f} {items:>8.2f} {peak:>9.0f}")
        del model, x
    return 0
