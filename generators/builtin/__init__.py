"""The built-in CPU generators (no weights) and the external-tool adapters, registered lazily."""
from __future__ import annotations

from pipeline.registry import Registry

BUILTINS: dict[str, str] = {
    "wav2lip": "generators.builtin.lipsync:Wav2LipLike",
    "videoretalking": "generators.builtin.lipsync:VideoReTalkingLike",
    "audio2head": "generators.builtin.talking_head:Audio2HeadLike",
    "makeittalk": "generators.builtin.talking_head:MakeItTalkLike",
    "faceswap": "generators.builtin.faceswap:FaceSwapLike",
    "faceswap-smooth": "generators.builtin.faceswap:FaceSwapSmooth",
    "voice": "generators.builtin.voice:VoiceFake",
}

EXTERNAL: dict[str, str] = {
    "wav2lip-external": "generators.external.tools:Wav2LipExternal",
    "videoretalking-external": "generators.external.tools:VideoReTalkingExternal",
    "audio2head-external": "generators.external.tools:Audio2HeadExternal",
    "makeittalk-external": "generators.external.tools:MakeItTalkExternal",
}


def register_builtins(registry: Registry) -> None:
    for name, spec in {**BUILTINS, **EXTERNAL}.items():
        registry.register(name, spec)
