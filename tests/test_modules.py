"""Shapes, gradients and the paper-specific behaviour of the detector building blocks (tiny configs)."""
from __future__ import annotations

import pytest
import torch

from detectors.modules.audio_prompts import ShortTimeAudioPrompts
from detectors.modules.cross_attention import BidirectionalCrossAttention, CrossAttentionBlock
from detectors.modules.ecl_encoders import AudioResNet34, VisualEncoder
from detectors.modules.ecl_fusion import ECLCrossModalFusion
from detectors.modules.heads import FusedClassifier, SimSiamProjector, TwoLayerHead
from detectors.modules.param_budget import audio_tokens_for, avprompt_parameter_budget
from detectors.modules.spatiotemporal import SpatioTemporalVideoEncoder
from detectors.modules.temporal_alignment import TemporalAlignment
from detectors.modules.visual_prompts import CLIPPromptedFrameEncoder, SequentialVisualPrompts

transformers = pytest.importorskip("transformers")

NUM_LAYERS = 3


def tiny_clip_config():
    # 32 px images, 16 px patches -> 4 patches + class token = 5 tokens
    return transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=NUM_LAYERS, num_attention_heads=4,
        image_size=32, patch_size=16,
    )


def tiny_whisper_config():
    return transformers.WhisperConfig(
        d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64, num_mel_bins=8,
        max_source_positions=64, decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=64,
    )


@pytest.fixture
def clip_model():
    torch.manual_seed(0)
    return transformers.CLIPVisionModel(tiny_clip_config()).eval()


@pytest.fixture
def whisper_encoder():
    torch.manual_seed(0)
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    return WhisperEncoder(tiny_whisper_config()).eval()


def record_layer_io(layers):
    """Forward hooks that keep every layer's input and output."""
    seen = []
    hooks = [
        layer.register_forward_hook(lambda m, args, out: seen.append((args[0].detach(), (out[0] if isinstance(out, tuple) else out).detach())))
        for layer in layers
    ]
    return seen, hooks


def trainable_names(module):
    return sorted(name for name, p in module.named_parameters() if p.requires_grad)


# ------------------------------------------------------------ sequential visual prompts
def test_sequential_prompts_are_inserted_and_kept(clip_model):
    encoder = CLIPPromptedFrameEncoder(clip_model, num_prompts=1, mode="sequential")
    seen, hooks = record_layer_io(encoder.vision.encoder.layers)
    frames = torch.randn(2, 3, 3, 32, 32)
    features = encoder(frames)
    for h in hooks:
        h.remove()
    assert features.shape == (2, 3, 32)
    # the sequence grows by one token per layer: 5 + 1, 5 + 2, 5 + 3
    assert [inp.shape[1] for inp, _ in seen] == [6, 7, 8]
    for index in range(NUM_LAYERS):
        inp, _ = seen[index]
        # the new prompt sits right after the class token
        torch.testing.assert_close(inp[:, 1], encoder.prompted.prompts[index, 0].detach().expand(6, -1))
        if index:
            _, prev_out = seen[index - 1]
            # class token, earlier prompt outputs and patches are passed through unchanged
            torch.testing.assert_close(inp[:, :1], prev_out[:, :1])
            torch.testing.assert_close(inp[:, 2:], prev_out[:, 1:])
    # the frame feature is the last layer's output at the newest prompt (position 1)
    last_out = seen[-1][1]
    torch.testing.assert_close(features.flatten(0, 1), last_out[:, 1])


def test_vpt_replacing_keeps_token_count_constant(clip_model):
    encoder = CLIPPromptedFrameEncoder(clip_model, num_prompts=2, mode="replace")
    seen, hooks = record_layer_io(encoder.vision.encoder.layers)
    encoder(torch.randn(1, 2, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert [inp.shape[1] for inp, _ in seen] == [7, 7, 7]  # 1 + 2 prompts + 4 patches
    for index in range(1, NUM_LAYERS):
        inp, _ = seen[index]
        prev_out = seen[index - 1][1]
        torch.testing.assert_close(inp[:, 1:3], encoder.prompted.prompts[index].detach().expand(2, -1, -1))
        torch.testing.assert_close(inp[:, 3:], prev_out[:, 3:])  # patches pass, old prompts are dropped


def test_prompt_mode_changes_only_the_forward(clip_model):
    seq = CLIPPromptedFrameEncoder(clip_model, mode="sequential")
    rep = CLIPPromptedFrameEncoder(clip_model, mode="replace")
    shapes = lambda m: [(n, tuple(p.shape)) for n, p in m.named_parameters() if p.requires_grad]
    assert shapes(seq) == shapes(rep) == [("prompted.prompts", (NUM_LAYERS, 1, 32))]
    rep.prompted.prompts.data.copy_(seq.prompted.prompts.data)
    frames = torch.randn(1, 2, 3, 32, 32)
    assert not torch.allclose(seq(frames), rep(frames))
    with pytest.raises(ValueError, match="mode"):
        SequentialVisualPrompts(seq.vision.encoder.layers, 32, mode="shallow")


def test_visual_prompts_train_and_backbone_stays_frozen(clip_model):
    encoder = CLIPPromptedFrameEncoder(clip_model)
    assert trainable_names(encoder) == ["prompted.prompts"]
    encoder(torch.randn(2, 2, 3, 32, 32)).pow(2).sum().backward()
    grad = encoder.prompted.prompts.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.vision.parameters())


# ------------------------------------------------------------ short-time audio prompts
def test_audio_prompts_shapes_and_trainable_parts(whisper_encoder):
    module = ShortTimeAudioPrompts(whisper_encoder, num_tokens=8, prompt_dim=12)
    out = module(torch.randn(3, 8, 16))  # 16 mel frames -> 8 tokens
    assert out["tokens"].shape == (3, 8, 32) and out["feature"].shape == (3, 32) and out["global"].shape == (3, 32)
    torch.testing.assert_close(out["feature"], out["tokens"].mean(1))  # Eq. 9: mean without the global token
    assert trainable_names(module) == sorted(
        ["prompts", "global_token"] + [f"fcs.{i}.{w}" for i in range(2) for w in ("weight", "bias")]
    )
    assert module.prompts.shape == (2, 8, 12) and module.fcs[0].in_features == 12 + 32
    with pytest.raises(ValueError, match="N_t = 16"):
        module(torch.randn(1, 8, 20))


def test_audio_prompts_are_concatenated_on_the_feature_axis(whisper_encoder):
    module = ShortTimeAudioPrompts(whisper_encoder, num_tokens=8, prompt_dim=12)
    fc_inputs, layer_inputs = [], []
    for fc, layer in zip(module.fcs, whisper_encoder.layers):
        fc.register_forward_hook(lambda m, args, out: fc_inputs.append(args[0].detach()))
        layer.register_forward_hook(lambda m, args, out: layer_inputs.append(args[0].detach()))
    out = module(torch.randn(2, 8, 16))
    # FC_l sees (B, N_t/2, D_p + D_a) with the prompt first; the layer sees 1 global + N_t/2 tokens
    assert [tuple(x.shape) for x in fc_inputs] == [(2, 8, 44)] * 2
    torch.testing.assert_close(fc_inputs[1][:, :, :12], module.prompts[1].detach().expand(2, -1, -1))
    assert [tuple(x.shape) for x in layer_inputs] == [(2, 9, 32)] * 2
    torch.testing.assert_close(layer_inputs[0][:, 0], module.global_token[0, 0].detach().expand(2, -1))
    # FC_l starts as the identity on the audio part, so at init the output equals the frozen
    # encoder run on [global token, z^0]
    h = torch.cat([module.global_token.expand(2, -1, -1), module.embed(torch.zeros(2, 8, 16))], 1)
    for layer in whisper_encoder.layers:
        h = layer(h, None)
        h = h[0] if isinstance(h, tuple) else h
    torch.testing.assert_close(module(torch.zeros(2, 8, 16))["tokens"], whisper_encoder.layer_norm(h[:, 1:]))


def test_audio_prompts_gradients(whisper_encoder):
    module = ShortTimeAudioPrompts(whisper_encoder, num_tokens=8)
    with torch.no_grad():
        for fc in module.fcs:
            fc.weight.add_(torch.randn_like(fc.weight) * 0.05)  # let the prompts reach the output
    module(torch.randn(2, 8, 16))["feature"].pow(2).sum().backward()
    for name in ("prompts", "global_token"):
        grad = getattr(module, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert all(p.grad is None for p in whisper_encoder.parameters())


# ------------------------------------------------------------ alignment, heads
def test_temporal_alignment_shapes_and_strides():
    align = TemporalAlignment(video_dim=24, audio_dim=16, fused_dim=8, num_frames=4, num_audio_tokens=8)
    assert align.conv_v.kernel_size == (1,) and align.conv_a.kernel_size == (2,) and align.conv_a.stride == (2,)
    v, a = align(torch.randn(3, 4, 24), torch.randn(3, 8, 16))
    assert v.shape == a.shape == (3, 4, 8)
    with pytest.raises(ValueError, match="split evenly"):
        TemporalAlignment(24, 16, 8, num_frames=3, num_audio_tokens=8)
    with pytest.raises(ValueError, match="expected 4 frames"):
        align(torch.randn(3, 5, 24), torch.randn(3, 8, 16))


def test_heads_shapes():
    head = TwoLayerHead(10, 6)
    assert [type(m).__name__ for m in head.net] == ["Linear", "ReLU", "Linear"]
    assert head(torch.randn(4, 10)).shape == (4, 2)
    fused = FusedClassifier((3, 5), hidden_dim=7)
    assert fused(torch.randn(2, 3), torch.randn(2, 5)).shape == (2, 2)
    with pytest.raises(ValueError, match="widths"):
        fused(torch.randn(2, 5), torch.randn(2, 3))
    assert SimSiamProjector(6)(torch.randn(4, 6)).shape == (4, 6)
    assert SimSiamProjector(6, norm="layer")(torch.randn(1, 6)).shape == (1, 6)


# ------------------------------------------------------------ cross-attention (CAD, ECL)
@pytest.mark.parametrize("norm_first", [True, False])
def test_cross_attention_takes_queries_from_one_side(norm_first):
    torch.manual_seed(0)
    block = CrossAttentionBlock(16, 4, norm_first=norm_first).eval()
    query, context = torch.randn(2, 5, 16), torch.randn(2, 9, 16)
    out = block(query, context)
    assert out.shape == (2, 5, 16)  # one output per query token
    assert not torch.allclose(out, block(query, torch.randn(2, 9, 16)))  # depends on the other modality
    # padded context tokens are ignored
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[:, 6:] = True
    padded = context.clone()
    padded[:, 6:] = 100.0
    torch.testing.assert_close(block(query, padded, mask), block(query, context[:, :6]))


def test_bidirectional_cross_attention_and_its_ablation():
    torch.manual_seed(0)
    video, audio = torch.randn(2, 4, 12), torch.randn(2, 10, 20)
    full = BidirectionalCrossAttention(12, 20, 16, num_heads=4)
    out = full(video, audio)
    assert out["x_v2a"].shape == out["x_a2v"].shape == (2, 16)
    assert out["v2a_tokens"].shape == (2, 4, 16) and out["a2v_tokens"].shape == (2, 10, 16)
    ablated = BidirectionalCrossAttention(12, 20, 16, num_heads=4, use_cross_attention=False)
    names = lambda m: {n for n, _ in m.named_parameters()}
    # the switch removes the attention blocks and nothing else
    assert names(full) - names(ablated) == {n for n in names(full) if n.startswith(("video_to_audio", "audio_to_video"))}
    assert names(ablated) <= names(full)
    ablated.load_state_dict({k: v for k, v in full.state_dict().items() if k in ablated.state_dict()})
    plain = ablated(video, audio)
    torch.testing.assert_close(plain["x_v2a"], full.project_video(video).mean(1))
    out["x_v2a"].sum().backward()
    assert torch.isfinite(full.project_audio.weight.grad).all()  # v2a queries video, attends audio


# ------------------------------------------------------------ CAD spatio-temporal encoder
def test_spatiotemporal_encoder_starts_as_the_frozen_vit_and_mixes_time(clip_model):
    encoder = SpatioTemporalVideoEncoder(clip_model, bottleneck=8)
    frames = torch.randn(2, 3, 3, 32, 32)
    out = encoder(frames)
    assert out["frame_features"].shape == (2, 3, 32) and out["embedding"].shape == (2, 32)
    # zero-initialised up-projections: identical to CLIP's pooled class token per frame
    reference = clip_model(pixel_values=frames.flatten(0, 1)).pooler_output.view(2, 3, 32)
    torch.testing.assert_close(out["frame_features"], reference, atol=1e-5, rtol=1e-5)
    assert all(name.startswith("adapters.") for name in trainable_names(encoder))
    # once trained, the adapters carry information across frames: changing frame 0 changes frame 1
    with torch.no_grad():
        for adapter in encoder.adapters:
            adapter.up.weight.normal_(std=0.1)
    base = encoder(frames)["frame_features"]
    changed = frames.clone()
    changed[:, 0] = torch.randn_like(changed[:, 0])
    assert not torch.allclose(encoder(changed)["frame_features"][:, 1], base[:, 1])
    encoder(frames)["embedding"].sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in encoder.adapters.parameters())


# ------------------------------------------------------------ ECL
def test_ecl_encoders_tiny_shapes_and_gradients():
    torch.manual_seed(0)
    audio = AudioResNet34(in_features=13, width=0.125)
    visual = VisualEncoder(width=0.125)
    f_a = audio(torch.randn(2, 13, 16))  # 16 MFCC steps at 100 Hz = 4 video frames
    f_v = visual(torch.randn(2, 4, 112, 112))
    assert f_a.shape == f_v.shape == (2, 4, 128)
    assert audio(torch.randn(2, 13, 18), num_frames=4).shape == (2, 4, 128)
    fusion = ECLCrossModalFusion()
    out = fusion(f_a, f_v)
    assert out["logits"].shape == (2, 2) and out["tokens"].shape == (2, 4, 256)
    out["logits"].sum().backward()
    for module in (audio, visual, fusion):
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
    with pytest.raises(ValueError, match="grayscale"):
        visual(torch.randn(2, 4, 1, 112, 112))


def test_ecl_encoders_paper_width_layout():
    audio = AudioResNet34(width=1.0)
    assert [len(getattr(audio, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]  # ResNet-34
    assert isinstance(audio.project, torch.nn.Identity)  # 128 filters at the top = the 128-d F_a
    visual = VisualEncoder(width=1.0)
    assert visual.frontend.out_channels == 512 and len(visual.temporal.blocks) == 5
    assert [len(stage) for stage in visual.frontend.resnet] == [2, 2, 2, 2]  # ResNet-18


# ------------------------------------------------------------ AVPrompt parameter budget
def test_param_budget_formula_on_tiny_configs():
    # tiny: D_v = 32, 3 layers, D_a = 32, 2 layers, T = 4, 2560 samples -> 16 mel -> 8 tokens
    budget = avprompt_parameter_budget(
        tiny_clip_config(), tiny_whisper_config(), num_frames=4, num_samples=2560, fused_dim=8, head_hidden=6
    )
    assert audio_tokens_for(2560) == 8
    assert budget["visual_prompts"] == 3 * 1 * 32
    assert budget["audio_prompts"] == 2 * 8 * 32 and budget["audio_global_token"] == 32
    assert budget["audio_fc"] == 2 * (64 * 32 + 32)
    assert budget["align_conv_v"] == 32 * 8 + 8 and budget["align_conv_a"] == 32 * 8 * 2 + 8
    assert budget["head_fused"] == 16 * 6 + 6 + 6 * 2 + 2
    parts = [v for k, v in budget.items() if not k.startswith(("frozen", "trainable"))]
    assert budget["trainable_total"] == sum(parts)


@pytest.mark.slow
def test_param_budget_paper_configuration():
    from detectors.modules.param_budget import paper_backbone_configs

    budget = avprompt_parameter_budget(*paper_backbone_configs())
    assert budget["trainable_total"] == 4_471_430  # the paper reports ~4.4 M
    assert budget["audio_fc"] == 6 * (1024 * 512 + 512)
