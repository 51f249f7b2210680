"""Reusable nn modules of the three detectors (CAD, AVPrompt, ECL).

- ``cross_attention``: cross-attention blocks (CAD's v→a / a→v, ECL's detector).
- ``spatiotemporal``: CAD's spatio-temporal video encoder (adapters on a ViT).
- ``heads``: two-linear-layer heads, the fused classifier, the SimSiam projector.
- ``visual_prompts``: AVPrompt's sequential visual prompts (and VPT-replacing).
- ``audio_prompts``: AVPrompt's short-time audio prompts on a Whisper encoder.
- ``temporal_alignment``: AVPrompt's 1-D conv alignment to T frames.
- ``ecl_encoders``: ECL's audio ResNet-34 and TalkNet-style visual encoder.
- ``ecl_fusion``: ECL's cross-modal fusion detector head.
- ``param_budget``: AVPrompt's trainable-parameter count for a configuration.
"""
