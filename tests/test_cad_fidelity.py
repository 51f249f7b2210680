"""CAD against its paper (seeds/000), defect by defect (issue 13): SimSiam's stop-gradient,
the 30 s Whisper window's padding, batch-1 BatchNorm under DDP, IDForge-v2's frame groups."""
from __future__ import annotations

import pytest
import torch

from detectors.cad import CAD
from detectors.losses import cad_losses
from detectors.modules.cross_attention import BidirectionalCrossAttention
from detectors.paper_common import clip_frames, whisper_mel, whisper_tokens
from test_detectors import synthetic_inputs

LABELS = torch.tensor([0, 1, 0, 1])
# 16 frames x 640 samples = 10,240 samples; 160 samples a mel frame, 2 mel frames a Whisper token.
SEGMENT_TOKENS = 16 * 640 // 160 // 2  # 32


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build(**overrides) -> CAD:
    torch.manual_seed(0)
    return CAD.from_preset("tiny", **overrides)


# --- 1. SimSiam: the projections (SimSiam's predictor outputs) train, the targets x_* are detached ----

@pytest.mark.parametrize("distillation,norm", [("simsiam", "layer"), ("simsiam", "batch"), ("kl", "layer")])
def test_every_projector_parameter_gets_a_gradient_from_the_distillation(distillation: str, norm: str) -> None:
    model = build(distillation=distillation, projector_norm=norm).train()
    out = model(synthetic_inputs(model.inputs, LABELS))
    kd = cad_losses(out["class_logits"], LABELS, out["x_v2a"], out["x_a2v"], out["x_v"], out["z_v"], out["x_a"],
                    out["z_a"], distillation=distillation)[f"kd_{distillation}"]
    params = dict(model.projector_video.named_parameters(prefix="projector_video"))
    params |= dict(model.projector_audio.named_parameters(prefix="projector_audio"))
    assert len(params) == 16  # 2 projectors x (2 linear + 2 norm layers) x (weight, bias)
    grads = torch.autograd.grad(kd, list(params.values()), retain_graph=True, allow_unused=True)
    dead = [name for name, g in zip(params, grads) if g is None or not g.abs().sum() > 0]
    assert not dead, dead
    # The target x_v gets L_KD's gradient only through its own projection z_v = projector(x_v):
    # the direct use of x_v (the target of z_a) is behind the stop-gradient.
    g_zv, g_xv = torch.autograd.grad(kd, [out["z_v"], out["x_v"]], retain_graph=True)
    through_projector = torch.autograd.grad(out["z_v"], out["x_v"], grad_outputs=g_zv, retain_graph=True)[0]
    torch.testing.assert_close(g_xv, through_projector)


# --- 2. whisper30: only the tokens that carry the segment's audio are attended to and pooled -------

def test_cross_attention_ignores_masked_audio_tokens() -> None:
    torch.manual_seed(0)
    for use_cross_attention in (True, False):
        shared = BidirectionalCrossAttention(12, 10, 16, 4, use_cross_attention=use_cross_attention).eval()
        video, audio = torch.randn(2, 5, 12), torch.randn(2, 40, 10)
        mask = torch.zeros(2, 40, dtype=torch.bool)
        mask[:, 8:] = True  # 8 tokens carry audio
        changed = audio.clone()
        changed[:, 8:] = 100 * torch.randn(2, 32, 10)
        a, b = shared(video, audio, mask), shared(video, changed, mask)
        for name in ("x_v2a", "x_a2v"):
            torch.testing.assert_close(a[name], b[name])
        # attending to / pooling the 8 audio tokens alone gives the same vectors
        alone = shared(video, audio[:, :8])
        for name in ("x_v2a", "x_a2v"):
            torch.testing.assert_close(a[name], alone[name])


def test_whisper30_pools_and_attends_only_over_the_segment_tokens() -> None:
    model = build(mel="whisper30").eval()
    inputs = synthetic_inputs(model.inputs, LABELS[:2])
    assert inputs["mel"].shape[-1] == 3000
    out = model(inputs)
    mel = whisper_mel(inputs, "whisper30")
    with torch.no_grad():
        # the specific path: the mean of the first 32 of 1,500 encoder tokens
        tokens = whisper_tokens(model.audio_encoder, mel)
        assert tokens.shape[1] == 1500
        expected_x_a = model.project_audio(tokens[:, :SEGMENT_TOKENS].mean(dim=1))
        # the shared path: the cross-attention over the 32 tokens alone
        f = clip_frames(inputs["face"], model.config.image_size)
        video_tokens = model.shared_clip(pixel_values=f.flatten(0, 1)).pooler_output.view(2, 16, -1)
        audio_tokens = whisper_tokens(model.shared_whisper, mel)[:, :SEGMENT_TOKENS]
        expected = model.shared(video_tokens, audio_tokens)
    torch.testing.assert_close(out["x_a"], expected_x_a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["x_v2a"], expected["x_v2a"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["x_a2v"], expected["x_a2v"], rtol=1e-4, atol=1e-5)


def test_truncated_mel_pools_every_token() -> None:
    model = build().eval()  # tiny: truncated mel, 64 frames -> 32 tokens, all audio
    inputs = synthetic_inputs(model.inputs, LABELS[:2])
    with torch.no_grad():
        out = model(inputs)
        tokens = whisper_tokens(model.audio_encoder, whisper_mel(inputs, "truncated"))
        assert tokens.shape[1] == SEGMENT_TOKENS
        torch.testing.assert_close(out["x_a"], model.project_audio(tokens.mean(dim=1)))
