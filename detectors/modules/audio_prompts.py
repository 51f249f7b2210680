"""AVPrompt's short-time audio prompts on a Whisper encoder (seeds/002, Eqs. 4, 8, 9).

Before layer l a learnable prompt ``P_a^l`` of shape (N_t/2, D_p) is
concatenated to the audio tokens along the *feature* axis and a per-layer
fully connected layer ``FC_l: D_a + D_p -> D_a`` brings the width back (Eq. 8).
A learnable global token ``z_ag`` is prepended before layer 1; from then on its
layer output is carried at position 0 and is not passed through ``FC_l``::

    z^1 = L^1([z_ag,       FC_1(cat(P^1, z^0))])
    z^l = L^l([z^{l-1,0}, FC_l(cat(P^l, z^{l-1,1..N_t/2}))])

The audio feature sequence ``f_a`` is the last layer's tokens 1..N_t/2 (Eq. 11)
and the segment feature their mean, without the global token (Eq. 9).

Whisper's own forward insists on 30 s inputs (3000 mel frames); AVPrompt feeds
0.64 s (64 mel frames -> N_t/2 = 32 tokens), so the embedding (Eq. 4: the conv
stem plus the first N_t/2 positional embeddings) is recomputed here from the
encoder's own frozen modules. Whisper's final ``layer_norm`` is part of its
encoder output and is applied (``final_layer_norm=True``).

Choices the paper leaves open: ``D_p`` (default ``D_a``), the init of ``FC_l``
(identity on the audio part, zero on the prompt part, so the frozen encoder is
unchanged at the start of training), the prompt/global-token init (normal, std 0.02).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detectors.modules._layers import freeze, run_layer


class ShortTimeAudioPrompts(nn.Module):
    """A `transformers` ``WhisperEncoder`` with short-time audio prompts and a global token."""

    def __init__(
        self,
        encoder: nn.Module,
        num_tokens: int,
        prompt_dim: int | None = None,
        freeze_backbone: bool = True,
        final_layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.dim = encoder.config.d_model
        if num_tokens < 1 or num_tokens > encoder.config.max_source_positions:
            raise ValueError(
                f"ShortTimeAudioPrompts: num_tokens must be in 1..{encoder.config.max_source_positions}, got {num_tokens}"
            )
        self.num_tokens = num_tokens
        self.prompt_dim = prompt_dim or self.dim
        if freeze_backbone:
            freeze(encoder)
        num_layers = len(encoder.layers)
        self.prompts = nn.Parameter(torch.randn(num_layers, num_tokens, self.prompt_dim) * 0.02)
        self.global_token = nn.Parameter(torch.randn(1, 1, self.dim) * 0.02)
        self.fcs = nn.ModuleList(nn.Linear(self.prompt_dim + self.dim, self.dim) for _ in range(num_layers))
        for fc in self.fcs:
            with torch.no_grad():
                fc.weight.zero_()
                fc.weight[:, self.prompt_dim :].copy_(torch.eye(self.dim))
                fc.bias.zero_()
        self.final_layer_norm = final_layer_norm

    def embed(self, input_features: torch.Tensor) -> torch.Tensor:
        """Eq. 4: (B, n_mels, N_t) log-mel -> (B, N_t/2, D_a) audio embedding ``z_a^0``."""
        enc = self.encoder
        if input_features.dim() != 3 or input_features.shape[1] != enc.config.num_mel_bins:
            raise ValueError(
                f"ShortTimeAudioPrompts: input_features must be (B, {enc.config.num_mel_bins}, N_t), "
                f"got {tuple(input_features.shape)}"
            )
        x = F.gelu(enc.conv1(input_features))
        x = F.gelu(enc.conv2(x)).transpose(1, 2)
        if x.shape[1] != self.num_tokens:
            raise ValueError(
                f"ShortTimeAudioPrompts: {input_features.shape[-1]} mel frames give {x.shape[1]} tokens, "
                f"the prompts were built for {self.num_tokens} (N_t = {2 * self.num_tokens})"
            )
        x = x + enc.embed_positions.weight[: self.num_tokens].to(x.dtype)
        return F.dropout(x, p=enc.dropout, training=self.training)

    def forward(self, input_features: torch.Tensor) -> dict[str, torch.Tensor]:
        """-> ``tokens`` (B, N_t/2, D_a) = f_a of Eq. 11, ``feature`` (B, D_a) = Eq. 9, ``global`` (B, D_a)."""
        tokens = self.embed(input_features)
        batch = tokens.shape[0]
        global_token = self.global_token.to(tokens.dtype).expand(batch, -1, -1)
        for index, layer in enumerate(self.encoder.layers):
            prompt = self.prompts[index].to(tokens.dtype).expand(batch, -1, -1)
            mixed = self.fcs[index](torch.cat([prompt, tokens], dim=-1))
            h = run_layer(layer, torch.cat([global_token, mixed], dim=1))
            global_token, tokens = h[:, :1], h[:, 1:]
        if self.final_layer_norm:
            global_token, tokens = self.encoder.layer_norm(global_token), self.encoder.layer_norm(tokens)
        return {"tokens": tokens, "feature": tokens.mean(dim=1), "global": global_token[:, 0]}
