"""Start a local Ray (loopback only, no usage stats, small object store) or attach to a cluster."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

# Settings that make a local Ray safe and quiet on a laptop or CI box; a user's
# environment still wins for each of them.
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_DEDUP_LOGS": "1",
}


@dataclass
class RayParams:
    """``ray`` section of params.yaml: where the Ray stages run."""

    address: str | None = None  # None: start a local Ray; "auto" or "ray://host:10001": attach
    num_cpus: int | None = None  # local Ray only; None = all cores
    object_store_mb: int = 512  # local Ray only
    max_retries: int = 2  # per task, on worker failure


def init_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    object_store_mb: int = 512,
    **kwargs: Any,
) -> Any:
    """Initialise Ray once per process and return the ``ray`` module.

    With no ``address`` a local Ray starts bound to loopback; with one (``auto``,
    ``host:port`` or ``ray://host:10001``) the process attaches to that
    cluster, and local-only options are ignored.
    """
    for k, v in RAY_ENV.items():
        os.environ.setdefault(k, v)
    import ray

    if ray.is_initialized():
        return ray
    common = dict(include_dashboard=False, log_to_driver=True, ignore_reinit_error=True, **kwargs)
    if address:
        ray.init(address=address, **common)
    else:
        ray.init(
            num_cpus=num_cpus,
            object_store_memory=object_store_mb * 1024 * 1024,
            _node_ip_address="127.0.0.1",
            **common,
        )
    return ray


def init_from_params(params: RayParams, address: str | None = None) -> Any:
    """``--address`` on the command line overrides params.yaml."""
    return init_ray(address or params.address, params.num_cpus, params.object_store_mb)
