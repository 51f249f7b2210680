"""Backbones: CLIP vision, Whisper encoder, tiny random configs, LoRA."""
