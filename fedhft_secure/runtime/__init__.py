"""Runtimes drive the byte-level client/server steps; ``local`` runs all of them in-process."""

from typing import Any

__all__ = ["run", "Fault"]


def __getattr__(name: str) -> Any:  # lazy: a Flower ClientApp relay imports runtime.flower without torch
    if name in __all__:
        from . import local

        return getattr(local, name)
    raise AttributeError(name)
