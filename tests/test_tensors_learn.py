"""Every trainable tensor of every registered detector learns: a few optimiser steps change each one,
for every preset and every named ablation. A tensor that never changes is dead weight that the
parameter count, the optimiser and the model card all pretend is part of the model.

Adam moves every parameter whose gradient is not exactly zero by about ``lr`` on its first step, so
"changed after three steps" catches both a missing gradient (a detached branch) and a gradient that is
identically zero (a dead ReLU unit). Where a tensor may legitimately stay put, ``ALLOWED`` names it
with the reason.
"""
from __future__ import annotations

import fnmatch

import pytest
import torch

from detectors.registry import DETECTORS
from detectors.training import build_detector
from test_detectors import LABELS, make_batch

# (detector, preset, ablation or "*", parameter-name pattern) -> why it may not change in a few steps
ALLOWED: dict[tuple[str, str, str, str], str] = {}

STEPS = 3
pytestmark = pytest.mark.usefixtures("one_torch_thread")
PAPER_OVERRIDES = {"cad": {"random_init": True, "num_frames": 4}, "avprompt": {"random_init": True, "num_frames": 4},
                   "ecl": {"num_frames": 4}}


def cases() -> list:
    out = []
    for name in DETECTORS.names():
        cls = DETECTORS.get(name)
        for preset in cls.PRESETS:
            for ablation in (None, *getattr(cls, "ABLATIONS", {})):
                marks = [pytest.mark.slow] if preset == "paper" and name in PAPER_OVERRIDES else []
                out.append(pytest.param(name, preset, ablation, marks=marks, id=f"{name}-{preset}-{ablation or 'full'}"))
    return out


def allowed(name: str, preset: str, ablation: str | None, param: str) -> bool:
    return any(
        d == name and p == preset and a in ("*", ablation) and fnmatch.fnmatch(param, pattern)
        for d, p, a, pattern in ALLOWED
    )


@pytest.mark.parametrize("name,preset,ablation", cases())
def test_every_trainable_tensor_changes_in_a_few_optimiser_steps(name, preset, ablation):
    torch.manual_seed(0)
    overrides = PAPER_OVERRIDES.get(name, {}) if preset == "paper" else {}
    model = build_detector(name, preset, overrides, ablation)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable, f"{name}[{preset}]: nothing to train"
    before = {n: p.detach().clone() for n, p in trainable.items()}
    optimiser = torch.optim.Adam(trainable.values(), lr=1e-2)
    model.train()
    for step in range(STEPS):
        batch = make_batch(model, LABELS, seed=step)
        optimiser.zero_grad(set_to_none=True)
        sum(model.loss(model(batch["inputs"]), batch["targets"]).values()).backward()
        optimiser.step()
    dead = sorted(n for n, p in trainable.items() if torch.equal(p.detach(), before[n]) and not allowed(name, preset, ablation, n))
    assert not dead, f"{name}[{preset}, {ablation or 'full'}]: {len(dead)} of {len(trainable)} trainable tensors never changed: {dead}"


def test_every_allowed_entry_names_a_real_case():
    """An allow-list entry for a detector, preset or ablation that no longer exists is stale."""
    for name, preset, ablation, _ in ALLOWED:
        cls = DETECTORS.get(name)
        assert preset in cls.PRESETS and ablation in ("*", *getattr(cls, "ABLATIONS", {}))
