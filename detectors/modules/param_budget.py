"""AVPrompt's trainable-parameter count, built from backbone configs with random weights.

The paper (seeds/002) reports "only 4.4M learnable parameters" for CLIP
ViT-B/32 + Whisper-base with N_vpt = 1, 16 frames and 10,240 samples. Three
sizes it leaves open dominate the count: the audio prompt width ``D_p``, the
aligned width ``D_f`` and the heads' hidden width. With ``D_p = D_a = 512``,
``D_f = 512`` and hidden 128 (the defaults here) the count is ~4.47 M; the
per-layer FC_l alone is 6 x (1024 x 512 + 512) = 3.15 M.
"""
from __future__ import annotations

from typing import Any

WHISPER_HOP = 160  # samples per mel frame at 16 kHz


def paper_backbone_configs() -> tuple[Any, Any]:
    """CLIP ViT-B/32 vision and Whisper-base configs (architecture only, no weights)."""
    from transformers import CLIPVisionConfig, WhisperConfig

    clip = CLIPVisionConfig(
        hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        image_size=224, patch_size=32, projection_dim=512,
    )
    whisper = WhisperConfig(
        d_model=512, encoder_layers=6, encoder_attention_heads=8, encoder_ffn_dim=2048,
        decoder_layers=6, decoder_attention_heads=8, decoder_ffn_dim=2048, num_mel_bins=80,
    )
    return clip, whisper


def audio_tokens_for(num_samples: int) -> int:
    """Whisper tokens for a segment: N_t = samples / 160 mel frames, halved by the conv stem."""
    mel_frames = num_samples // WHISPER_HOP
    return (mel_frames + 1) // 2


def avprompt_parameter_budget(
    clip_config: Any,
    whisper_config: Any,
    num_prompts: int = 1,
    num_frames: int = 16,
    num_samples: int = 10240,
    prompt_dim: int | None = None,
    fused_dim: int = 512,
    head_hidden: int = 128,
) -> dict[str, int]:
    """Build AVPrompt's modules around randomly initialised backbones and count parameters."""
    from transformers import CLIPVisionModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from detectors.modules.audio_prompts import ShortTimeAudioPrompts
    from detectors.modules.heads import TwoLayerHead
    from detectors.modules.temporal_alignment import TemporalAlignment
    from detectors.modules.visual_prompts import CLIPPromptedFrameEncoder

    def count(module, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

    tokens = audio_tokens_for(num_samples)
    visual = CLIPPromptedFrameEncoder(CLIPVisionModel(clip_config), num_prompts)
    audio = ShortTimeAudioPrompts(WhisperEncoder(whisper_config), tokens, prompt_dim)
    d_v, d_a = visual.dim, audio.dim
    align = TemporalAlignment(d_v, d_a, fused_dim, num_frames, tokens)
    heads = {
        "head_video": TwoLayerHead(d_v, head_hidden),
        "head_audio": TwoLayerHead(d_a, head_hidden),
        "head_fused": TwoLayerHead(2 * fused_dim, head_hidden),
    }
    budget = {
        "visual_prompts": visual.prompted.prompts.numel(),
        "audio_prompts": audio.prompts.numel(),
        "audio_global_token": audio.global_token.numel(),
        "audio_fc": count(audio.fcs),
        "align_conv_v": count(align.conv_v),
        "align_conv_a": count(align.conv_a),
        **{name: count(head) for name, head in heads.items()},
    }
    budget["trainable_total"] = sum(budget.values())
    budget["frozen_clip_vision"] = count(visual.vision, trainable_only=False)
    budget["frozen_whisper_encoder"] = count(audio.encoder, trainable_only=False)
    # guard: what the wrappers leave trainable must be exactly the listed parts
    listed_audio = budget["audio_prompts"] + budget["audio_global_token"] + budget["audio_fc"]
    if count(visual) != budget["visual_prompts"] or count(audio) != listed_audio:
        raise AssertionError("param budget: a backbone parameter is still trainable")
    return budget
