"""The same checks for every registered detector (timm-style), the ablation switches of the
paper detectors, and training each paper detector to above chance on a synthetic set."""
from __future__ import annotations

import math

import pytest
import torch

from detectors.base import InputSpec
from detectors.loop import BatchSource, LoopParams, fit
from detectors.registry import DETECTORS
from pipeline.errors import ConfigError

NAMES = DETECTORS.names()
PAPER_DETECTORS = ["cad", "avprompt", "ecl"]
NUM_SYMBOLS = 40


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic_inputs(spec: InputSpec, labels: torch.Tensor, seed: int = 0, face_size: int = 64) -> dict[str, torch.Tensor]:
    """Inputs for ``spec``: fakes show a bright square and carry a 1 kHz tone (and larger facts); teacher
    posteriors agree on reals."""
    g = torch.Generator().manual_seed(seed)
    b, t = len(labels), spec.num_frames
    fake = labels.bool()
    inputs: dict[str, torch.Tensor] = {}
    for name, channels, size in (("face", 3, face_size), ("face_gray", 1, 48), ("mouth", 1, 32)):
        if name in spec.modalities:
            x = torch.randint(0, 120, (b, t, channels, size, size), generator=g, dtype=torch.uint8)
            lo, hi = size // 4, size // 2
            x[fake, :, :, lo:hi, lo:hi] = 250
            inputs[name] = x
    audio = 0.05 * torch.randn(b, t * 640, generator=g)
    audio[fake] += 0.3 * torch.sin(2 * torch.pi * 1000 * torch.arange(t * 640) / 16000)
    if "audio" in spec.modalities:
        inputs["audio"] = audio
    if "facts" in spec.modalities:  # the shortcut probes' per-clip facts: every fact is larger on fakes
        from pipeline.clip_facts import FACTS

        inputs["facts"] = torch.rand(b, len(FACTS), generator=g) + fake[:, None].float()
    if spec.mel is not None:
        from detectors.backbones.whisper import log_mel

        inputs["mel"] = log_mel(audio, pad_to_30s=spec.mel == "whisper30")
    return inputs


def with_teachers(inputs: dict[str, torch.Tensor], labels: torch.Tensor, frames: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Precomputed ASR/VSR posteriors: the same distribution on real segments, unrelated ones on fakes."""
    g = torch.Generator().manual_seed(seed + 1)
    p_a = torch.softmax(3 * torch.randn(len(labels), frames, NUM_SYMBOLS, generator=g), -1)
    p_v = p_a.clone()
    fake = labels.bool()
    p_v[fake] = torch.softmax(3 * torch.randn(int(fake.sum()), frames, NUM_SYMBOLS, generator=g), -1)
    return inputs | {"teacher_audio": p_a, "teacher_video": p_v}


def make_batch(model, labels: torch.Tensor, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    inputs = synthetic_inputs(model.inputs, labels, seed)
    if model.name == "ecl":
        inputs = with_teachers(inputs, labels, model.inputs.num_frames, seed)
    targets = {"label": labels, "video_fake": labels, "audio_fake": labels}
    return {"inputs": inputs, "targets": targets}


def build(name: str, **overrides):
    torch.manual_seed(0)
    return DETECTORS.get(name).from_preset("tiny", **overrides)


LABELS = torch.tensor([0, 1, 0, 1])


# --- the same checks for every registered detector ----------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_predict(name):
    model = build(name)
    batch = make_batch(model, LABELS)
    model.train()
    out = model(batch["inputs"])
    assert out["logits"].shape == (len(LABELS),)
    for key in ("video_logits", "audio_logits"):
        if key in out:
            assert out[key].shape == (len(LABELS),)
    losses = model.loss(out, batch["targets"])
    assert losses and all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    assert trainable
    # every trainable tensor is reached by the loss (whether it then moves: tests/test_tensors_learn.py)
    missing = sorted(n for n, p in trainable.items() if p.grad is None)
    assert not missing, f"{len(missing)} of {len(trainable)} trainable tensors got no gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in trainable.values())
    assert all(p.grad is None for p in frozen.values())
    # predict: no targets, probabilities
    model.eval()
    scores = model.predict(batch["inputs"])
    assert scores["score"].shape == (len(LABELS),)
    assert all(((s >= 0) & (s <= 1)).all() for s in scores.values())


@pytest.mark.parametrize("name", NAMES)
def test_forward_leaves_its_inputs_alone(name):
    # Detectors normalise frames in place on their own copy; float frames (a cast that would not copy)
    # are where an in-place step would write into the caller's batch.
    model = build(name).eval()
    inputs = {k: v.float() if v.dtype == torch.uint8 else v for k, v in make_batch(model, LABELS)["inputs"].items()}
    before = {k: v.clone() for k, v in inputs.items()}
    with torch.no_grad():
        model(inputs)
    assert [k for k in inputs if not torch.equal(inputs[k], before[k])] == []


@pytest.mark.parametrize("name", NAMES)
def test_a_traced_detector_scores_as_the_eager_one(name, tmp_path):
    """``avdf detect``'s cached trace (detectors.traced) of every detector: traced on one batch size,
    saved and read back, it gives the eager scores bit for bit on other sizes."""
    from detectors.traced import load_traced, save_traced, trace_predict

    model = build(name).eval()
    batches = [make_batch(model, labels, seed)["inputs"]
               for seed, labels in enumerate((LABELS, torch.tensor([1]), torch.tensor([0, 1, 1, 0, 1, 0])))]
    module = trace_predict(model, batches[:2])
    traced = load_traced(save_traced(tmp_path / "traced.pt", module, model, "sha"), "sha")
    assert traced is not None and traced.name == model.name and traced.inputs == model.inputs
    eager = model.predict(batches[2])
    again = traced.predict(batches[2])
    assert set(again) == set(eager) and all(torch.equal(again[k], eager[k]) for k in eager)


@pytest.mark.parametrize("name", NAMES)
def test_from_preset_is_strict(name):
    cls = DETECTORS.get(name)
    with pytest.raises(ConfigError):
        cls.from_preset("tiny", no_such_field=1)
    with pytest.raises(ConfigError):
        cls.from_preset("no-such-preset")
    assert {"tiny", "paper"} <= set(cls.PRESETS)


@pytest.mark.parametrize("name", PAPER_DETECTORS)
def test_frozen_parameters_stay_frozen(name):
    # the paper's freezing: frozen backbones (tiny trains its random backbones, so switch that off)
    overrides = {"train_backbones": False} if name != "ecl" else {}
    model = build(name, **overrides)
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    if name != "ecl":
        assert frozen_before, "the paper freezes its backbones"
    batch = make_batch(model, LABELS)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(2):
        optimiser.zero_grad()
        sum(model.loss(model(batch["inputs"]), batch["targets"]).values()).backward()
        optimiser.step()
    after = dict(model.named_parameters())
    assert all(torch.equal(frozen_before[n], after[n]) for n in frozen_before)


def test_avprompt_has_per_modality_heads():
    model = build("avprompt")
    batch = make_batch(model, LABELS)
    out = model(batch["inputs"])
    assert {"video_logits", "audio_logits", "logits"} <= set(out)
    assert {"video_score", "audio_score", "score"} <= set(model.predict(batch["inputs"]))
    assert set(model.loss(out, batch["targets"])) == {"l_v", "l_a", "l_f", "cmfm_frame"}


def test_cad_and_ecl_losses_are_named_as_in_the_papers():
    cad = build("cad")
    b = make_batch(cad, LABELS)
    assert set(cad.loss(cad(b["inputs"]), b["targets"])) == {"cls", "kl_align", "kd_simsiam"}
    ecl = build("ecl")
    b = make_batch(ecl, LABELS)
    assert set(ecl.loss(ecl(b["inputs"]), b["targets"])) == {"cls", "dist", "contra"}


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_clip_frames_normalise_with_clips_mean_and_std_and_leave_the_input_alone(dtype):
    from detectors.paper_common import clip_frames

    face = torch.zeros(1, 2, 3, 4, 4, dtype=torch.uint8)
    face[0, 1] = 255
    face[0, 0, 1, 2, 3] = 51  # 0.2 of full scale
    face = face if dtype == torch.uint8 else face.float() / 255
    before = face.clone()
    out = clip_frames(face, 4)
    # CLIP's preprocessing: (x - mean) / std per channel, x in [0, 1] (mean 0.4578275, std 0.26130258 for G)
    assert out[0, 0, 1, 2, 3].item() == pytest.approx((0.2 - 0.4578275) / 0.26130258, abs=1e-6)
    assert out[0, 0, 1, 0, 0].item() == pytest.approx(-0.4578275 / 0.26130258, abs=1e-6)
    assert out[0, 1, 0, 0, 0].item() == pytest.approx((1 - 0.48145466) / 0.26862954, abs=1e-6)
    assert out[0, 1, 2, 3, 3].item() == pytest.approx((1 - 0.40821073) / 0.27577711, abs=1e-6)
    assert torch.equal(face, before)  # normalised in a tensor of its own, never the caller's


def test_paper_configs_need_local_weights():
    for name in ("cad", "avprompt"):
        with pytest.raises(ConfigError, match="random_init"):
            DETECTORS.get(name).from_preset("paper")


@pytest.mark.slow  # builds ViT-B/32 + Whisper-base with random weights (~10 s)
def test_avprompt_paper_trainable_parameters_close_to_4_4m():
    from detectors.avprompt import AVPrompt

    count = AVPrompt.paper_trainable_parameters()
    assert 4.2e6 < count < 4.7e6, count


# --- ablation switches: each changes what it names and nothing else --------------------------

# (detector, ablation) -> (parameter-name prefixes it removes, forward logits unchanged?, losses removed, added)
ABLATION_EFFECTS = {
    ("cad", "only video"): (("audio_encoder.", "project_audio.", "shared_clip.", "shared_whisper.", "shared.",
                             "projector_video.", "projector_audio.", "classifier."), False, {"kl_align", "kd_simsiam"}, set()),
    ("cad", "w/o alignment"): ((), True, {"kl_align"}, set()),
    ("cad", "w/o cross attention"): (("shared.video_to_audio.", "shared.audio_to_video."), False, set(), set()),
    ("cad", "w/o frozen model"): ((), True, set(), set()),
    ("cad", "w/o distillation"): (("projector_video.", "projector_audio."), True, {"kd_simsiam"}, set()),
    ("cad", "SimSiam -> KL"): ((), True, {"kd_simsiam"}, {"kd_kl"}),
    ("avprompt", "audio branch only"): (("visual.", "head_video.", "align.", "head_fused."), False,
                                        {"l_v", "l_f", "cmfm_frame"}, set()),
    ("avprompt", "visual branch only"): (("audio.", "head_audio.", "align.", "head_fused."), False,
                                         {"l_a", "l_f", "cmfm_frame"}, set()),
    ("avprompt", "w/o L_CMFM"): ((), True, {"cmfm_frame"}, set()),
    ("avprompt", "w/o L_a"): (("head_audio.",), True, {"l_a"}, set()),
    ("avprompt", "w/o L_v"): (("head_video.",), True, {"l_v"}, set()),
    ("avprompt", "VPT-replacing"): ((), False, set(), set()),
    ("avprompt", "segment-level loss"): ((), True, {"cmfm_frame"}, {"cmfm_segment"}),
    ("ecl", "w/o Cons"): ((), True, {"contra"}, set()),
    ("ecl", "w/o Cons&Dis"): ((), True, {"contra", "dist"}, set()),
}


def test_every_ablation_row_is_covered():
    listed = {(n, a) for n in PAPER_DETECTORS for a in DETECTORS.get(n).ABLATIONS}
    assert listed == set(ABLATION_EFFECTS)


@pytest.mark.parametrize("name,ablation", sorted(ABLATION_EFFECTS))
def test_ablation_changes_only_what_it_names(name, ablation):
    removed_prefixes, same_logits, losses_removed, losses_added = ABLATION_EFFECTS[(name, ablation)]
    cls = DETECTORS.get(name)
    base_over = {"train_backbones": False} if ablation == "w/o frozen model" else {}
    base = build(name, **base_over)
    ablated = build(name, **base_over, **cls.ABLATIONS[ablation])
    base_params = dict(base.named_parameters())
    ablated_params = dict(ablated.named_parameters())
    # parameters: exactly the named modules disappear (a fused classifier may change its input width)
    gone = set(base_params) - set(ablated_params)
    assert all(n.startswith(removed_prefixes) for n in gone), sorted(gone)[:5]
    assert not (set(ablated_params) - set(base_params))
    for prefix in removed_prefixes:
        if prefix != "classifier.":
            assert any(n.startswith(prefix) for n in gone), f"{prefix} should be gone"
    if ablation == "w/o frozen model":
        newly = {n for n, p in ablated_params.items() if p.requires_grad} - {n for n, p in base_params.items() if p.requires_grad}
        assert newly and all(n.startswith(("shared_clip.", "shared_whisper.")) for n in newly)
    # same weights where the names agree, then compare the computation
    common = {k: v for k, v in base.state_dict().items() if k in ablated.state_dict() and v.shape == ablated.state_dict()[k].shape}
    ablated.load_state_dict(common, strict=False)
    base.eval(), ablated.eval()
    batch = make_batch(base, LABELS)
    batch_ablated = make_batch(ablated, LABELS)
    with torch.no_grad():
        out_b, out_a = base(batch["inputs"]), ablated(batch_ablated["inputs"])
        assert torch.allclose(out_b["logits"], out_a["logits"], atol=1e-5) == same_logits
        losses_b, losses_a = base.loss(out_b, batch["targets"]), ablated.loss(out_a, batch["targets"])
    assert set(losses_b) - set(losses_a) == losses_removed
    assert set(losses_a) - set(losses_b) == losses_added
    if same_logits:
        for key in set(losses_b) & set(losses_a):
            assert torch.allclose(losses_b[key], losses_a[key], atol=1e-5), key


def test_sequential_prompts_keep_earlier_prompts():
    model = build("avprompt")
    layers = model.visual.vision.encoder.layers
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [layer.register_forward_hook(lambda m, args, out: seen.append((args[0], out[0] if isinstance(out, tuple) else out)))
             for layer in layers]
    batch = make_batch(model, LABELS[:2])
    with torch.no_grad():
        model(batch["inputs"])
    for h in hooks:
        h.remove()
    n = model.config.num_prompts
    lengths = [inp.shape[1] for inp, _ in seen]
    assert lengths == [lengths[0] + i * n for i in range(len(layers))]
    for (_, out_prev), (inp_next, _) in zip(seen, seen[1:]):
        # class token, then the new prompt, then every previous output (earlier prompts included)
        assert torch.equal(inp_next[:, :1], out_prev[:, :1])
        assert torch.equal(inp_next[:, 1 + n :], out_prev[:, 1:])


def test_vpt_replacing_keeps_the_length():
    model = build("avprompt", prompt_mode="replace")
    lengths = []
    hooks = [layer.register_forward_hook(lambda m, args, out: lengths.append(args[0].shape[1]))
             for layer in model.visual.vision.encoder.layers]
    with torch.no_grad():
        model(make_batch(model, LABELS[:2])["inputs"])
    for h in hooks:
        h.remove()
    assert len(set(lengths)) == 1


# --- training to above chance on held-out synthetic items ------------------------------------

class InMemorySource(BatchSource):
    def __init__(self, model, n_train: int = 24, n_val: int = 16, batch_size: int = 8) -> None:
        self.batch_size = batch_size
        self.train = self._items(model, n_train, seed=1, prefix="train")
        self.val = self._items(model, n_val, seed=2, prefix="val")

    @staticmethod
    def _items(model, n, seed, prefix):
        labels = torch.arange(n) % 2
        batch = make_batch(model, labels, seed)
        batch["meta"] = {"key": [f"{prefix}/c{i}" for i in range(n)], "video_id": [f"{prefix}/v{i}" for i in range(n)]}
        return batch

    def _slice(self, data, idx):
        idx_t = torch.tensor(idx)
        return {"inputs": {k: v[idx_t] for k, v in data["inputs"].items()},
                "targets": {k: v[idx_t] for k, v in data["targets"].items()},
                "meta": {k: [v[i] for i in idx] for k, v in data["meta"].items()}}

    def train_epoch(self, epoch, rank, world_size):
        n = len(self.train["meta"]["key"])
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).tolist()[rank::world_size]
        per = self.batch_size // world_size
        for i in range(0, len(order), per):
            yield self._slice(self.train, order[i : i + per])

    def validation(self):
        n = len(self.val["meta"]["key"])
        for i in range(0, n, self.batch_size):
            yield self._slice(self.val, list(range(i, min(i + self.batch_size, n))))


@pytest.mark.parametrize("name", PAPER_DETECTORS)
def test_trains_above_chance_on_held_out_items(name, tmp_path):
    model = build(name, num_frames=8)
    params = LoopParams(epochs=6, batch_size=8, lr=1e-3, amp=False, grad_clip=5.0, device="cpu")
    metrics = fit(model, InMemorySource(model), tmp_path, params, progress=False)
    auc = metrics["best_val_auc"]
    assert not math.isnan(auc) and auc >= 0.85, metrics
