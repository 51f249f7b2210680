"""Classification heads and the SimSiam projector."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn


class TwoLayerHead(nn.Module):
    """AVPrompt's heads: "two linear layers with a ReLU activation" (seeds/002).

    The paper does not give the hidden width; ``hidden_dim`` is a knob (the
    ``paper`` config's choice is explained in ``param_budget``).
    """

    def __init__(self, in_dim: int, hidden_dim: int, num_classes: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FusedClassifier(nn.Module):
    """CAD's classifier on "the final integrated vector ... encompassing both the specific and shared
    components" (seeds/000, Sec. 4.4): concatenate the given vectors, then a two-layer MLP.

    ``in_dims`` lists the widths in the order the vectors are passed, e.g.
    ``(shared_v2a, shared_a2v, specific_video, specific_audio)``; an ablation
    that drops a path builds the classifier with fewer inputs.
    """

    def __init__(self, in_dims: Sequence[int], hidden_dim: int, num_classes: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        if not in_dims:
            raise ValueError("FusedClassifier: in_dims must name at least one input")
        self.in_dims = tuple(int(d) for d in in_dims)
        self.net = nn.Sequential(
            nn.Linear(sum(self.in_dims), hidden_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, num_classes)
        )

    def forward(self, *vectors: torch.Tensor) -> torch.Tensor:
        widths = tuple(v.shape[-1] for v in vectors)
        if widths != self.in_dims:
            raise ValueError(f"FusedClassifier: expected inputs of widths {self.in_dims}, got {widths}")
        return self.net(torch.cat(vectors, dim=-1))


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) over the default process group, differentiable: the loss summed over the
    ranks depends on every rank's input, so the backward sums the incoming gradients over the ranks too.
    (``torch.distributed.nn.functional.all_reduce`` does the same but is deprecated.)"""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _SumOverRanks.apply(grad)


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` whose training statistics are those of the *global* batch under DDP.

    SimSiam's projector normalises over the batch; with CAD's paper batch of 8 on 8
    GPUs each rank holds one sample, where ``BatchNorm1d`` raises ("expected more than
    1 value per channel") and ``SyncBatchNorm`` runs on GPUs only. Here, when a process
    group is initialised and has more than one rank, training mode sums (count, Σx, Σx²)
    over the ranks with a differentiable all-reduce, so every rank normalises with the
    statistics of the global batch and the gradient matches single-process training on
    that batch. Every rank must then run the forward in training mode together, as DDP
    training does; evaluation (``eval()``) uses the running statistics and communicates
    nothing. The state dict is ``BatchNorm1d``'s.

    A global batch of one sample (no DDP and a lone last batch, or one rank alone) has
    no batch statistics: that batch is normalised with the running estimates, as in
    evaluation, and leaves them unchanged. It does not raise; the affine weights still
    get their gradient.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if x.dim() != 2:
            raise ValueError(f"GlobalBatchNorm1d: expected (batch, features), got {tuple(x.shape)}")
        if not self.training:
            return super().forward(x)
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if not distributed:
            if x.shape[0] > 1:
                return super().forward(x)
            return self._with_running_stats(x)
        # Two passes (mean, then the centred squares): E[x²] - E[x]² cancels badly when the
        # spread of a small global batch is small next to its mean.
        xf = x if x.dtype == torch.float64 else x.float()  # statistics in float32 at least (AMP gives fp16)
        total = _SumOverRanks.apply(torch.cat([xf.sum(dim=0), xf.new_full((1,), float(x.shape[0]))]))
        n = total[-1].detach()
        if float(n) < 2:
            return self._with_running_stats(x)
        mean = total[:-1] / n
        var = _SumOverRanks.apply(((xf - mean) ** 2).sum(dim=0)) / n  # biased, as BatchNorm normalises
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)  # unbiased, as BatchNorm
        y = (xf - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight + self.bias
        return y.to(x.dtype)

    def _with_running_stats(self, x: torch.Tensor) -> torch.Tensor:
        if not self.track_running_stats:
            raise ValueError("GlobalBatchNorm1d: a global batch of 1 has no statistics and no running ones to use")
        return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                        training=False, eps=self.eps)


class SimSiamProjector(nn.Module):
    """The "SimSiam projections" ``z`` of CAD Eq. 8: an MLP in the style of SimSiam's projector.

    ``norm="batch"`` follows SimSiam (BatchNorm over the global batch, ``GlobalBatchNorm1d``:
    safe with one sample per DDP rank; a lone batch of one uses the running statistics);
    ``norm="layer"`` normalises each sample on its own.
    """

    def __init__(self, dim: int, hidden_dim: int | None = None, norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "layer"):
            raise ValueError(f"SimSiamProjector: norm must be 'batch' or 'layer', got {norm!r}")
        hidden_dim = hidden_dim or dim
        make = (lambda d: GlobalBatchNorm1d(d)) if norm == "batch" else (lambda d: nn.LayerNorm(d))
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), make(hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, dim), make(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
