"""CAD against its paper (seeds/000), defect by defect (issue 13): SimSiam's stop-gradient,
the 30 s Whisper window's padding, batch-1 BatchNorm under DDP, IDForge-v2's frame groups."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


# --- 3. BatchNorm projectors (the paper preset) with one sample per rank -----------------------

def test_batchnorm_projector_with_a_lone_sample_uses_running_statistics() -> None:
    model = build(projector_norm="batch").train()
    inputs = synthetic_inputs(model.inputs, LABELS[:1])
    out = model(inputs)  # BatchNorm1d raises here ("Expected more than 1 value per channel")
    loss = sum(model.loss(out, {"label": LABELS[:1]}).values())
    loss.backward()
    bn = model.projector_video.net[1]
    # running statistics untouched (still the initial 0 / 1), and used: z = weight * x / sqrt(1 + eps) + bias
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean)) and int(bn.num_batches_tracked) == 0
    hidden = model.projector_video.net[0](out["x_v"])
    torch.testing.assert_close(bn(hidden), hidden / (1 + bn.eps) ** 0.5 * bn.weight + bn.bias)
    assert bn.weight.grad is not None and bn.weight.grad.abs().sum() > 0


def test_batchnorm_projector_matches_batchnorm_on_a_batch_of_two_or_more() -> None:
    from detectors.modules.heads import GlobalBatchNorm1d

    torch.manual_seed(0)
    ours, reference = GlobalBatchNorm1d(6), torch.nn.BatchNorm1d(6)
    x = torch.randn(4, 6)
    torch.testing.assert_close(ours(x), reference(x))
    torch.testing.assert_close(ours.running_var, reference.running_var)


def _run(out: Path, mode: str, processes: int, port: int) -> dict[str, torch.Tensor]:
    """``cad_ddp_train.py`` alone or under torchrun with ``processes`` gloo processes; rank 0's saved state."""
    tests_dir = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests_dir), os.environ.get("PYTHONPATH", "")])}
    env.pop("WORLD_SIZE", None)
    launch = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port", str(port)]
    out.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([*launch, str(tests_dir / "cad_ddp_train.py"), str(out), mode], env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return torch.load(out / "final.pt")


def test_global_batchnorm_over_two_ranks_of_one_sample_is_batchnorm_of_the_global_batch(tmp_path: Path) -> None:
    got = _run(tmp_path / "bn", "bn", processes=2, port=29542)
    # the reference: torch's BatchNorm1d on the 2-sample batch in one process (float64, as the script)
    torch.manual_seed(0)
    x_all, w_all = torch.randn(2, 6, dtype=torch.float64) * 0.1 + 3, torch.randn(2, 6, dtype=torch.float64)
    bn = torch.nn.BatchNorm1d(6).double().train()
    x = x_all.clone().requires_grad_(True)
    y = bn(x)
    (y * w_all).sum().backward()
    expected = {"y": y.detach(), "x_grad": x.grad, "weight_grad": bn.weight.grad, "bias_grad": bn.bias.grad,
                "running_mean": bn.running_mean, "running_var": bn.running_var}
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=1e-9, atol=1e-9, msg=name)


def test_cad_trains_under_ddp_with_one_sample_per_rank_like_one_process_with_two(tmp_path: Path) -> None:
    single = _run(tmp_path / "single", "cad", processes=1, port=0)
    distributed = _run(tmp_path / "ddp", "cad", processes=2, port=29541)  # BatchNorm1d raised here
    assert int(single["projector_video.net.1.num_batches_tracked"]) > 0  # batch statistics, not the lone-sample path
    assert int(distributed["projector_video.net.1.num_batches_tracked"]) > 0
    # BatchNorm over a global batch of 2 divides by the spread of two samples, which amplifies
    # float32 rounding (the float64 test above is exact); the two SGD steps move weights by ~1e-3.
    for name, value in single.items():
        torch.testing.assert_close(distributed[name], value, rtol=1e-3, atol=1e-4, msg=name)


# --- 4. IDForge-v2's frame groups on ordinary clips ----------------------------------------------

GROUP_CLIPS = [
    {"key": "studio/id01-u1", "num_frames": 70},
    {"key": "studio/id02-u1", "num_frames": 35, "video_fake": True},
    {"key": "studio/id03-u1", "num_frames": 10},  # shorter than 16 frames: runs overlap
]
# np.linspace(0, n - 4, 4).round(), worked by hand: 70 -> 0, 22, 44, 66; 35 -> 0, 10.33, 20.67, 31; 10 -> 0, 2, 4, 6
GROUP_STARTS = {"studio/id01-u1": (0, 22, 44, 66), "studio/id02-u1": (0, 10, 21, 31), "studio/id03-u1": (0, 2, 4, 6)}


@pytest.fixture(scope="module")
def group_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.loading.synthetic import write_synthetic_corpus
    from pipeline.shards import CropSizes, ShardParams, write_shards

    root = tmp_path_factory.mktemp("groups")
    sizes = (24, 16, 12)
    manifest = write_synthetic_corpus(root / "pre", GROUP_CLIPS, sizes=sizes)
    result = write_shards(manifest, root / "shards", ShardParams(max_samples_per_shard=2), CropSizes(*sizes),
                          progress=False)
    assert not result.failures
    return root / "shards"


def test_cad_asks_for_frame_groups_and_the_loaders_give_them(group_shards: Path) -> None:
    from pipeline.loaders import EvalLoader, SegmentSpec, TrainLoader

    from detectors.training import input_spec_to_segments

    spec = CAD.from_preset("tiny", frame_sampling="groups").inputs
    assert spec.frame_sampling == "groups"
    assert input_spec_to_segments(spec).frame_sampling == "groups"  # what avdf train/evaluate/detect hand the loaders
    segment_spec = SegmentSpec(num_frames=16, modalities=("face", "audio"), frame_sampling="groups")
    for loader in (EvalLoader(group_shards, segment_spec, batch_size=2),
                   TrainLoader(group_shards, segment_spec, batch_size=2, segments_per_epoch=6)):
        seen = 0
        for batch in loader:
            face, audio = batch["inputs"]["face"], batch["inputs"]["audio"]
            assert face.shape[1] == 16 and audio.shape[1] == 16 * 640
            for b, key in enumerate(batch["meta"]["key"]):
                frames = [s + j for s in GROUP_STARTS[key] for j in range(4)]
                assert batch["meta"]["start"][b] == 0
                # the synthetic corpus: frame t is an image of value t, its 640 audio samples have value t
                for i, t in enumerate(frames):
                    assert torch.all(face[b, i] == t), (key, i, t)
                    assert torch.all(audio[b, 640 * i : 640 * (i + 1)] == t), (key, i, t)
                seen += 1
        assert seen == (3 if isinstance(loader, EvalLoader) else 6)  # groups: one evaluation segment per clip


def test_consecutive_frames_stay_the_default() -> None:
    from pipeline.loaders import SegmentSpec

    # the paper preset keeps the config default (building it would need ViT-B/16 and Whisper-small)
    assert "frame_sampling" not in CAD.PRESETS["paper"] and CAD.Config().frame_sampling == "consecutive"
    assert SegmentSpec().frame_sampling == "consecutive"
    with pytest.raises(ValueError, match="divisible"):
        SegmentSpec(num_frames=10, frame_sampling="groups")
