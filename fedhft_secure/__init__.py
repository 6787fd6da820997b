"""fedhft-secure: FedHFT federated fine-tuning whose server only ever sees sums."""

from .config import RunConfig, load_config
from .exceptions import FedHFTError

__all__ = ["RunConfig", "load_config", "FedHFTError", "__version__"]
__version__ = "0.1.0"
