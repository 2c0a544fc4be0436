"""torch_geometric's layers, imported without its import-time FutureWarning.

torch_geometric (2.6-2.8) calls ``torch.jit.script`` while it is imported, and torch 2.9+
warns about that on every ``ftmoe`` command and in the operator's log; the warning is
about torch_geometric's code, not ours, so exactly that one is silenced here.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)
    from torch_geometric.nn import GATv2Conv

__all__ = ["GATv2Conv"]
