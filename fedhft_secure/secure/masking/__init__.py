"""Pairwise-masked secure sums after SecAgg+ (Bell et al., CCS 2020): the ``masking`` backend."""

from .backend import MaskingSum, participation
from .client import MaskingClient
from .params import MaskingParams, derive_params, neighbour_graph
from .server import MaskingServer

__all__ = ["MaskingSum", "participation", "MaskingClient", "MaskingServer", "MaskingParams", "derive_params",
           "neighbour_graph"]
