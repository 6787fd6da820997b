"""CKKS (TenSEAL) SecureSum backend: the server adds ciphertexts it cannot read."""

from .backend import CkksClient, CkksServer, flood_noise
from .keys import PublicBundle, SecretBundle, generate_keys
from .packing import Layout, Slot, layout_for, pack, unpack
from .params import SECURITY_TABLE_128, CkksParameterError, CkksParams, derive_params, tightest_precision

__all__ = ["CkksClient", "CkksServer", "flood_noise", "PublicBundle", "SecretBundle", "generate_keys",
           "Layout", "Slot", "layout_for", "pack", "unpack", "SECURITY_TABLE_128", "CkksParameterError",
           "CkksParams", "derive_params", "tightest_precision"]
