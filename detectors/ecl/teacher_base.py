"""What every ECL teacher shares: the symbol sets, the ``Teacher`` interface and its error.

The teacher implementations (``teachers``: avdf's CTC models, TorchScript and the
checkpoint loader; ``whisper_teacher``; ``deep_avsr``) import this module and
never each other's base, so imports go one way: ``teachers`` -> implementations
-> ``teacher_base``.
"""
from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pipeline.errors import AvdfError

FPS = 25
SAMPLES_PER_FRAME = 640


class TeacherError(AvdfError):
    """A teacher checkpoint or teacher data that cannot be used."""


# --- symbol sets ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SymbolSet:
    """CTC output symbols; index 0 is the blank."""

    name: str
    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.symbols or self.symbols[0] != "<blank>":
            raise TeacherError(f"symbol set {self.name!r}: index 0 must be '<blank>'")

    def __len__(self) -> int:
        return len(self.symbols)

    def index(self, symbol: str) -> int:
        return self.symbols.index(symbol)


ARPABET = ("AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH",
           "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V",
           "W", "Y", "Z", "ZH")
PHONES = SymbolSet("arpabet", ("<blank>", *ARPABET))
# deep_avsr's (the paper's teacher) characters, less its digits and <EOS>
CHARACTERS = SymbolSet("characters", ("<blank>", " ", "'", *string.ascii_uppercase))
SYMBOL_SETS = {s.name: s for s in (PHONES, CHARACTERS)}


def symbol_set(symbols: Sequence[str]) -> SymbolSet:
    for known in SYMBOL_SETS.values():
        if tuple(symbols) == known.symbols:
            return known
    return SymbolSet("custom", tuple(symbols))


# --- the interface -------------------------------------------------------------------------------

class Teacher(nn.Module):
    """Frozen speech recogniser: ``posteriors(inputs) -> (B, T', C)`` probabilities over ``symbols``."""

    modality: str = "audio"  # audio (ASR) | video (VSR)
    input_key: str = "audio"  # the batch input it reads: audio | mouth
    frame_rate: float = FPS

    def __init__(self, symbols: SymbolSet) -> None:
        super().__init__()
        self.symbols = symbols
        # What an avdf-trained teacher learned from (see the module docstring); None: external.
        self.trained_on: dict[str, Any] | None = None

    def logits(self, x: torch.Tensor) -> torch.Tensor:  # (B, T', C)
        raise NotImplementedError

    @torch.no_grad()
    def posteriors(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.input_key not in inputs:
            raise TeacherError(f"{self.modality} teacher needs {self.input_key!r} in the batch inputs")
        return torch.softmax(self.logits(inputs[self.input_key]).float(), dim=-1)
