"""Run by tests through torchrun: train a tiny detector with DDP (gloo) and save its weights."""
import sys
from pathlib import Path

import torch

from detectors.baselines import VideoBaseline
from detectors.loop import LoopParams, fit
from loop_data import SyntheticSource

out = Path(sys.argv[1])
torch.manual_seed(0)
model = VideoBaseline.from_preset("tiny", frame_size=32, width=8, depth=2, num_frames=4)
# SGD: Adam would amplify float noise in near-zero gradients (biases before GroupNorm) into real differences.
fit(model, SyntheticSource(), out, LoopParams(epochs=2, optimizer="sgd", lr=1e-2, grad_clip=None), progress=False)
if torch.distributed.is_initialized():
    if torch.distributed.get_rank() == 0:
        torch.save(model.state_dict(), out / "final.pt")
    torch.distributed.destroy_process_group()
else:
    torch.save(model.state_dict(), out / "final.pt")
