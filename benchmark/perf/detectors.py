"""Paper detectors (CAD, AVPrompt, ECL): parameters, time per training step and per 10 s video (random weights)."""
from __future__ import annotations

import argparse
import time
from typing import Any

from benchmark.perf.measure import measure

DETECTOR_NAMES = ("cad", "avprompt", "ecl")
SIZES = ("tiny", "paper")
VIDEO_S = 10.0
FPS = 25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detectors", nargs="+", choices=DETECTOR_NAMES, default=list(DETECTOR_NAMES))
    parser.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES), help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=2, help="segments per training step (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=2, help="timed repeats after one warm-up (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def _inputs(model: Any, batch: int, device: Any) -> dict[str, Any]:
    """Loader-shaped inputs for ``model.inputs`` (faces 224 / 112 / 96 px as the loaders give them)."""
    import torch

    from detectors.backbones.whisper import log_mel

    spec = model.inputs
    t = spec.num_frames
    sizes = {"face": (3, 224), "face_gray": (1, 112), "mouth": (1, 96)}
    inputs: dict[str, Any] = {}
    for name, (channels, size) in sizes.items():
        if name in spec.modalities:
            inputs[name] = torch.randint(0, 255, (batch, t, channels, size, size), dtype=torch.uint8)
    audio = 0.1 * torch.randn(batch, t * 640)
    if "audio" in spec.modalities:
        inputs["audio"] = audio
    if spec.mel is not None:
        inputs["mel"] = log_mel(audio, pad_to_30s=spec.mel == "whisper30")
    if model.name == "ecl" and model.uses_teachers:
        p = torch.softmax(torch.randn(batch, t, 40), -1)
        inputs |= {"teacher_audio": p, "teacher_video": p.flip(0)}
    return {k: v.to(device) for k, v in inputs.items()}


def run(args: argparse.Namespace) -> int:
    import torch

    from detectors.backbones.params import count_parameters
    from detectors.registry import DETECTORS

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch_size}, "
          f"{args.repeat} timed repeats after 1 warm-up; paper = paper architecture with random weights")
    print(f"{'detector':<10} {'size':<6} {'trainable M':>11} {'total M':>8} {'build s':>8} "
          f"{'s/train step':>12} {'s/10 s video':>12} {'peak MiB':>9}")
    for name in args.detectors:
        cls = DETECTORS.get(name)
        for size in args.sizes:
            overrides = {"random_init": True} if size == "paper" and "random_init" in cls.Config.__dataclass_fields__ else {}
            t0 = time.perf_counter()
            model = cls.from_preset(size, **overrides).to(device)
            built = time.perf_counter() - t0
            trainable, total = count_parameters(model)
            batch = _inputs(model, args.batch_size, device)
            labels = (torch.arange(args.batch_size) % 2).to(device)
            targets = {"label": labels, "video_fake": labels, "audio_fake": labels}
            optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)

            def step() -> None:
                model.train()
                optimiser.zero_grad()
                sum(model.loss(model(batch), targets).values()).backward()
                optimiser.step()
                if device.type == "cuda":
                    torch.cuda.synchronize()

            # a 10 s video = its non-overlapping segments, scored in one batch
            segments = int(VIDEO_S * FPS) // model.inputs.num_frames
            video = _inputs(model, segments, device)

            def infer() -> None:
                model.eval()
                model.predict(video)
                if device.type == "cuda":
                    torch.cuda.synchronize()

            step()
            with measure() as m_train:
                for _ in range(args.repeat):
                    step()
            infer()
            with measure() as m_infer:
                for _ in range(args.repeat):
                    infer()
            peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else max(
                m_train.peak_rss_mb, m_infer.peak_rss_mb)
            print(f"{name:<10} {size:<6} {trainable / 1e6:>11.2f} {total / 1e6:>8.2f} {built:>8.1f} "
                  f"{m_train.seconds / args.repeat:>12.2f} {m_infer.seconds / args.repeat:>12.2f} {peak:>9.0f}",
                  flush=True)
            del model, batch, video, optimiser
    return 0
