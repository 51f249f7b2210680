"""Evaluation protocols as named, versioned data (the ``*.yaml`` files here).

``load_protocol(name, version=None)`` returns a ``Protocol``;
``protocol.split(manifest)`` returns ``Splits``: for each fold the sorted
train/val/test keys, deterministic for the protocol's seeds, with the
guarantees of ``splitting.py`` checked. ``list_protocols()`` lists every
shipped version. The file format is documented in ``spec.py``; the studio
conventions (methods, ``extra.recipe``, ``extra.subset``) in ``studio.yaml``.
"""
from benchmark.protocols.catalog import (
    Protocol,
    ProtocolInfo,
    list_protocols,
    listing_rows,
    load_protocol,
    load_protocol_file,
)
from benchmark.protocols.splitting import REAL, Fold, ProtocolError, Splits

__all__ = [
    "REAL",
    "Fold",
    "Protocol",
    "ProtocolError",
    "ProtocolInfo",
    "Splits",
    "list_protocols",
    "listing_rows",
    "load_protocol",
    "load_protocol_file",
]
