"""Run by tests through torchrun (2 gloo processes) or alone: CAD's BatchNorm projectors with one sample per rank.

``cad_ddp_train.py OUT cad``: train CAD (tiny, BatchNorm projectors) for one epoch and save its weights;
single process: batches of 2; under torchrun with 2 processes: 1 sample per rank.
``cad_ddp_train.py OUT bn``: (torchrun only) one float64 ``GlobalBatchNorm1d`` step, one row per rank;
rank 0 saves the gathered outputs, input gradients, summed weight gradients and running statistics.
"""
import sys
from pathlib import Path

import torch

out, mode = Path(sys.argv[1]), sys.argv[2]
torch.set_num_threads(1)
if mode == "cad":
    from detectors.cad import CAD
    from detectors.loop import LoopParams, fit
    from loop_data import SyntheticSource

    torch.manual_seed(0)
    # dropout 0: each rank would draw its own dropout masks, which single-process training cannot match.
    model = CAD.from_preset("tiny", projector_norm="batch", dropout=0.0)
    source = SyntheticSource(n=4, batch_size=2, frames=16, size=32)
    # SGD, as in ddp_train.py: Adam would amplify float noise in near-zero gradients into real differences.
    fit(model, source, out, LoopParams(epochs=1, optimizer="sgd", lr=1e-2, grad_clip=None), progress=False)
    state = model.state_dict()
else:
    import torch.distributed as dist

    from detectors.modules.heads import GlobalBatchNorm1d

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    x_all, w_all = torch.randn(2, 6, dtype=torch.float64) * 0.1 + 3, torch.randn(2, 6, dtype=torch.float64)
    bn = GlobalBatchNorm1d(6).double().train()
    x = x_all[rank : rank + 1].clone().requires_grad_(True)
    y = bn(x)
    (y * w_all[rank]).sum().backward()
    ys, grads = [torch.empty_like(y) for _ in range(2)], [torch.empty_like(x) for _ in range(2)]
    dist.all_gather(ys, y.detach())
    dist.all_gather(grads, x.grad)
    dist.all_reduce(bn.weight.grad)
    dist.all_reduce(bn.bias.grad)
    state = {"y": torch.cat(ys), "x_grad": torch.cat(grads), "weight_grad": bn.weight.grad, "bias_grad": bn.bias.grad,
             "running_mean": bn.running_mean, "running_var": bn.running_var}
if torch.distributed.is_initialized():
    if torch.distributed.get_rank() == 0:
        torch.save(state, out / "final.pt")
    torch.distributed.destroy_process_group()
else:
    torch.save(state, out / "final.pt")
