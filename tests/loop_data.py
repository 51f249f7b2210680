"""An in-memory BatchSource for loop tests: synthetic segments whose label is visible in the pixels/audio."""
from __future__ import annotations

import torch

from detectors.loop import BatchSource


class SyntheticSource(BatchSource):
    """``n`` clips of one segment each; fakes have a bright square in the face and a tone in the audio."""

    def __init__(self, n: int = 16, batch_size: int = 8, frames: int = 4, size: int = 32, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % 2
        face = torch.randint(0, 120, (n, frames, 3, size, size), generator=g, dtype=torch.uint8)
        face[self.labels == 1, :, :, 8:24, 8:24] = 250
        t = torch.arange(frames * 640) / 16000
        audio = 0.05 * torch.randn(n, frames * 640, generator=g)
        audio[self.labels == 1] += 0.5 * torch.sin(2 * torch.pi * 1000 * t)
        self.inputs = {"face": face, "audio": audio}
        self.keys = [f"t/c{i}" for i in range(n)]
        self.batch_size = batch_size
        self.seed = seed

    def _batch(self, idx: list[int]) -> dict:
        idx_t = torch.tensor(idx, dtype=torch.long)
        return {
            "inputs": {k: v[idx_t] for k, v in self.inputs.items()},
            "targets": {"label": self.labels[idx_t], "video_fake": self.labels[idx_t], "audio_fake": self.labels[idx_t]},
            "meta": {"key": [self.keys[i] for i in idx], "video_id": [self.keys[i] for i in idx]},
        }

    def train_epoch(self, epoch: int, rank: int, world_size: int):
        order = torch.randperm(len(self.keys), generator=torch.Generator().manual_seed(self.seed * 1000 + epoch))
        mine = order.tolist()[rank::world_size]
        per_rank = self.batch_size // world_size
        for i in range(0, len(mine), per_rank):
            yield self._batch(mine[i : i + per_rank])

    def validation(self):
        for i in range(0, len(self.keys), self.batch_size):
            yield self._batch(list(range(i, min(i + self.batch_size, len(self.keys)))))
