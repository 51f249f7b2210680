"""The one training loop for every detector.

Optimiser and schedule from config, AMP on CUDA, gradient clipping,
checkpoints that carry the detector config, train params, git hash and data
hash; exact resume after a kill (at epoch boundaries; every epoch reseeds its RNGs);
model selection and early stopping on the validation split only; per-epoch
metrics in DVC-friendly JSON; DDP when launched with ``torchrun``.

No detector-specific code lives here: a detector contributes ``forward``,
``loss`` and ``predict``; everything else is shared.
"""
from __future__ import annotations

import functools
import io
import logging
import math
import os
import random
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from detectors.base import Detector
from pipeline.atomic import write_bytes_atomic, write_json_atomic
from pipeline.errors import AvdfError, ConfigError

log = logging.getLogger(__name__)

Batch = dict[str, Any]  # {"inputs": {...}, "targets": {...}, "meta": {"key": [...], ...}}


@dataclass
class ScheduleParams:
    kind: Literal["constant", "step", "exponential", "cosine"] = "constant"
    milestones: list[int] = field(default_factory=list)  # step: epochs where lr *= gamma
    gamma: float = 0.1  # step: factor at each milestone; exponential: factor every epoch
    warmup_epochs: int = 0


@dataclass
class LoopParams:
    """How to optimise (a detector's preset says what to build)."""

    epochs: int = 15
    batch_size: int = 8
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    schedule: ScheduleParams = field(default_factory=ScheduleParams)
    grad_clip: float | None = 5.0
    amp: bool = True  # mixed precision, on CUDA only
    early_stop_patience: int | None = None  # epochs without validation improvement
    select_metric: Literal["auc", "acc", "loss"] = "auc"
    # Segments per validation clip, spread evenly over it (None: every non-overlapping segment, as the
    # test split is scored). The same segments every epoch, so epochs stay comparable; read by the
    # batch source (detectors.training.ShardBatchSource), the one place validation batches are made.
    val_segments_per_clip: int | None = None
    # The decision threshold stored with each checkpoint, chosen on that epoch's validation scores
    # (detectors.operating_point): "eer" (FPR = FNR) or "fpr" (the best TPR at FPR <= threshold_target_fpr).
    # No paper states one; avdf's choice is EER, a threshold that needs no target.
    threshold_rule: Literal["eer", "fpr"] = "eer"
    threshold_target_fpr: float = 0.05
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.val_segments_per_clip is not None and self.val_segments_per_clip < 1:
            raise ConfigError("val_segments_per_clip must be >= 1 (or null: every segment), "
                              f"got {self.val_segments_per_clip}")
        if not 0 < self.threshold_target_fpr < 1:
            raise ConfigError(f"threshold_target_fpr must be in (0, 1), got {self.threshold_target_fpr}")


class CheckpointMismatch(AvdfError):
    """A checkpoint made for another detector, config or dataset."""


@functools.cache  # one lookup per process, not a subprocess for every checkpoint written
def git_hash() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def seed_everything(seed: int) -> None:
    """Seed every RNG training touches (Python, NumPy, torch on CPU and every CUDA device) and ask torch
    for deterministic kernels, so a rerun on the same machine gives the same checkpoint bytes."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for deterministic GEMMs
    # warn_only: an op without a deterministic kernel warns (naming itself) instead of failing a long run
    use_deterministic_algorithms(warn_only=True)


def use_deterministic_algorithms(warn_only: bool) -> None:
    """``torch.use_deterministic_algorithms(True)`` without importing TorchInductor.

    The public function imports ``torch._inductor.config`` only to set its ``deterministic`` flag:
    1.5-1.8 CPU-s at every training process, for a compiler avdf never calls. Where Inductor is
    not loaded yet, the same flag is set through the variable its config reads when it loads."""
    import sys

    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=warn_only)
        return
    os.environ["TORCHINDUCTOR_DETERMINISTIC"] = "1"
    set_flag(True, warn_only=warn_only)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's random streams, derived from the run's seed."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def build_optimizer(params: Iterable[nn.Parameter], p: LoopParams) -> torch.optim.Optimizer:
    params = [q for q in params if q.requires_grad]
    if not params:
        raise AvdfError("the detector has no trainable parameters")
    # foreach: one call per step over all parameter tensors instead of a Python loop over them (torch's
    # default on CUDA, not on CPU); the same updates, bit for bit, at half the cost for a detector's
    # hundreds of small tensors.
    if p.optimizer == "adam":
        return torch.optim.Adam(params, lr=p.lr, weight_decay=p.weight_decay, foreach=True)
    if p.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=p.lr, weight_decay=p.weight_decay, foreach=True)
    return torch.optim.SGD(params, lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay, foreach=True)


def lr_factor(epoch: int, p: LoopParams) -> float:
    """Multiplier of the base learning rate during ``epoch`` (0-based)."""
    s = p.schedule
    if epoch < s.warmup_epochs:
        return (epoch + 1) / (s.warmup_epochs + 1)
    if s.kind == "step":
        return s.gamma ** sum(epoch >= m for m in s.milestones)
    if s.kind == "exponential":
        return s.gamma ** (epoch - s.warmup_epochs)
    if s.kind == "cosine":
        span = max(p.epochs - s.warmup_epochs, 1)
        return 0.5 * (1 + math.cos(math.pi * (epoch - s.warmup_epochs) / span))
    return 1.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to_device(tensors: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in tensors.items()}


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "DistributedContext":
        """Set up torch.distributed when launched by torchrun (WORLD_SIZE > 1)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


class BatchSource:
    """Where batches come from. ``train_epoch`` must give rank r of w the samples
    r, r+w, r+2w, ... of the epoch's global order, in batches of batch_size // w,
    so that a DDP run sees exactly the batches a single process sees."""

    def train_epoch(self, epoch: int, rank: int, world_size: int) -> Iterable[Batch]:
        raise NotImplementedError

    def validation(self) -> Iterable[Batch]:
        raise NotImplementedError


@dataclass
class Validation:
    """One validation pass: the summary that goes into history, and the clip scores behind it."""

    summary: dict[str, Any]
    labels: np.ndarray  # per clip, sorted by key
    scores: np.ndarray  # mean segment P(fake) per clip


def evaluate(model: Detector, batches: Iterable[Batch], device: torch.device) -> Validation:
    """Segment scores -> clip scores (mean) -> loss, ACC at 0.5 and AUC on the clips (and how many clips
    and segments were scored)."""
    # scikit-learn's AUC: the benchmark's own lives a layer up (benchmark.metrics), which detectors never import.
    from sklearn.metrics import roc_auc_score

    model.eval()
    seg_scores: dict[str, list[float]] = defaultdict(list)
    labels: dict[str, int] = {}
    loss_sum, n = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            inputs = _to_device(batch["inputs"], device)
            targets = _to_device(batch["targets"], device)
            out = model(inputs)
            loss_sum += float(sum(model.loss(out, targets).values())) * len(batch["meta"]["key"])
            n += len(batch["meta"]["key"])
            scores = torch.sigmoid(out["logits"].float()).cpu().tolist()
            for key, score, label in zip(batch["meta"]["key"], scores, batch["targets"]["label"].tolist()):
                seg_scores[key].append(score)
                labels[key] = int(label)
    if not n:
        raise AvdfError("the validation split is empty")
    keys = sorted(seg_scores)
    y = np.array([labels[k] for k in keys])
    s = np.array([np.mean(seg_scores[k]) for k in keys])
    auc = float(roc_auc_score(y, s)) if len(set(y)) == 2 else float("nan")
    summary = {"loss": loss_sum / n, "acc": float(((s >= 0.5) == y).mean()), "auc": auc, "clips": len(keys),
               "segments": n}
    return Validation(summary, y, s)


def operating_point(val: Validation, params: LoopParams) -> dict[str, Any]:
    """The threshold (and temperature) a checkpoint is used with, from its own validation scores only;
    ``{"threshold": None, "reason": ...}`` where the split cannot define one (a single class)."""
    from detectors.operating_point import OperatingPointError, fit_temperature, select_threshold

    try:
        point = select_threshold(val.labels, val.scores, rule=params.threshold_rule,
                                 target_fpr=params.threshold_target_fpr)
    except OperatingPointError as exc:
        return {"threshold": None, "rule": params.threshold_rule, "reason": str(exc)}
    return {**point, "temperature": fit_temperature(val.labels, val.scores)}


def _improved(metric: str, value: float, best: float | None) -> bool:
    if value != value:  # NaN never improves
        return False
    if best is None:
        return True
    return value < best if metric == "loss" else value > best


def checkpoint_identity(model: Detector, data_hash: str | None) -> dict[str, Any]:
    return {"detector": model.name, "detector_config": model.config_dict(), "data_hash": data_hash}


def check_checkpoint(ckpt: dict[str, Any], model: Detector, path: Path, data_hash: str | None = None) -> None:
    """Refuse a checkpoint of another detector, another config, or (when given) other data."""
    if ckpt.get("detector") != model.name:
        raise CheckpointMismatch(f"{path}: checkpoint is for detector {ckpt.get('detector')!r}, not {model.name!r}")
    if ckpt.get("detector_config") != model.config_dict():
        diff = sorted(
            k for k in set(ckpt.get("detector_config", {})) | set(model.config_dict())
            if ckpt.get("detector_config", {}).get(k) != model.config_dict().get(k)
        )
        raise CheckpointMismatch(f"{path}: checkpoint was made with another {model.name} config (differs in {diff})")
    if data_hash is not None and ckpt.get("data_hash") not in (None, data_hash):
        raise CheckpointMismatch(f"{path}: checkpoint was trained on other data (data hash differs)")


def load_checkpoint(path: Path) -> dict[str, Any]:
    from detectors.backbones.weights import read_torch_pickle

    return read_torch_pickle(path, "checkpoint", AvdfError, weights_only=False)


def fit(
    model: Detector,
    source: BatchSource,
    out_dir: Path,
    params: LoopParams,
    data_hash: str | None = None,
    extra_identity: dict[str, Any] | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` on ``source``; write ``last.pt``, ``best.pt``, ``history.json``, ``metrics.json``.

    Rerunning with the same arguments after a kill resumes from ``last.pt``.
    Returns the final metrics dict (also in ``metrics.json``).
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    ctx = DistributedContext.from_env()
    device = resolve_device(params.device)
    if device.type == "cuda" and ctx.world_size > 1:
        device = torch.device("cuda", ctx.local_rank)
    seed_everything(params.seed)
    model.to(device)
    train_model: nn.Module = model
    if ctx.world_size > 1:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
    optimizer = build_optimizer(model.parameters(), params)
    use_amp = params.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    identity = {**checkpoint_identity(model, data_hash), **(extra_identity or {})}

    start_epoch, best, best_epoch, stale, history, best_point = 0, None, None, 0, [], None
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if last_path.exists():
        ckpt = load_checkpoint(last_path)
        check_checkpoint(ckpt, model, last_path, data_hash)
        if ckpt.get("loop_params") != asdict(params):
            raise CheckpointMismatch(f"{last_path}: checkpoint was made with other training params; use a new --out")
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, best, best_epoch, stale = ckpt["epoch"] + 1, ckpt["best"], ckpt["best_epoch"], ckpt["stale"]
        best_point = ckpt.get("best_operating_point")
        history = ckpt["history"]
        if ctx.is_main:
            log.info(f"resuming from {last_path} at epoch {start_epoch}")

    t_start = time.perf_counter()
    for epoch in range(start_epoch, params.epochs):
        if params.early_stop_patience is not None and stale >= params.early_stop_patience:
            break
        # Each epoch reseeds every RNG from (seed, epoch): a resumed run continues exactly, and draws made
        # outside training (a library seeding itself on first import) cannot shift the epochs after them.
        seed_everything(epoch_seed(params.seed, epoch))
        for group in optimizer.param_groups:
            group["lr"] = params.lr * lr_factor(epoch, params)
        train_model.train()
        sums: dict[str, float] = defaultdict(float)
        steps = 0
        t0 = time.perf_counter()
        batches = source.train_epoch(epoch, ctx.rank, ctx.world_size)
        bar = tqdm(batches, desc=f"{model.name} epoch {epoch + 1}/{params.epochs}", disable=not (progress and ctx.is_main), leave=False)
        for batch in bar:
            inputs = _to_device(batch["inputs"], device)
            targets = _to_device(batch["targets"], device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, enabled=use_amp):
                out = train_model(inputs)
                losses = model.loss(out, targets)
                total = sum(losses.values())
            if not torch.isfinite(total):
                raise AvdfError(f"{model.name}: non-finite loss at epoch {epoch + 1} ({ {k: float(v) for k, v in losses.items()} })")
            scaler.scale(total).backward()
            if params.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip, foreach=True)  # as the optimiser
            scaler.step(optimizer)
            scaler.update()
            steps += 1
            for k, v in losses.items():
                sums[k] += float(v.detach())
            sums["total"] += float(total.detach())
            bar.set_postfix(loss=f"{sums['total'] / steps:.4f}")
        if steps == 0:
            raise AvdfError(f"{model.name}: the training split gave no batches")
        # No wall-clock figure goes into history or metrics: a rerun with the same seed writes the same bytes.
        epoch_seconds = time.perf_counter() - t0
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            **{f"train_{k}": v / steps for k, v in sums.items()},
        }
        validation = evaluate(model, source.validation(), device)
        val = validation.summary
        record.update({f"val_{k}": v for k, v in val.items()})
        metric = params.select_metric
        if val[metric] != val[metric]:
            # AUC is undefined on a one-class validation split (a property of the split,
            # so the same every epoch): select on the validation loss instead.
            metric = "loss"
        value = val[metric]
        record["selected_on"] = metric
        improved = _improved(metric, value, best)
        point = operating_point(validation, params)
        if improved:
            best, best_epoch, stale, best_point = value, epoch + 1, 0, point
        else:
            stale += 1
        history.append(record)
        if ctx.is_main:
            # An improving epoch's best.pt holds the very state its last.pt does: serialised once, written twice.
            _save([best_path, last_path] if improved else [last_path], model, optimizer, scaler, identity, params,
                  epoch, best, best_epoch, stale, history, point, best_point)
            write_json_atomic(out_dir / "history.json", history)
            log.info(
                f"{model.name} epoch {epoch + 1}: train loss {record['train_total']:.4f}, "
                f"val {metric} {value:.4f} (best {best:.4f} at epoch {best_epoch}), {epoch_seconds:.1f} s"
            )
        if on_epoch_end is not None:
            on_epoch_end(epoch)

    metrics = {
        "detector": model.name,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        f"best_val_{history[-1].get('selected_on', params.select_metric) if history else params.select_metric}": best,
        "operating_point": best_point,
        "last": history[-1] if history else None,
    }
    if ctx.is_main:
        write_json_atomic(out_dir / "metrics.json", metrics)
    return {**metrics, "seconds": round(time.perf_counter() - t_start, 3)}


def _save(paths: list[Path], model: Detector, optimizer: Any, scaler: Any, identity: dict[str, Any],
          params: LoopParams, epoch: int, best: float | None, best_epoch: int | None, stale: int,
          history: list[dict[str, Any]], point: dict[str, Any], best_point: dict[str, Any] | None) -> None:
    state = {
        **identity,
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "loop_params": asdict(params),
        "epoch": epoch,
        "best": best,
        "best_epoch": best_epoch,
        "stale": stale,
        "history": history,
        "operating_point": point,  # of this epoch's weights, on this epoch's validation scores
        "best_operating_point": best_point,  # best.pt's, for a resumed run's metrics.json
        "git_hash": git_hash(),
        "torch": torch.__version__,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)  # a file object: torch names the archive's root after a path's (random) stem
    for path in paths:
        write_bytes_atomic(path, buffer.getvalue())


