"""Runtimes drive the byte-level client/server steps; ``local`` runs all of them in-process."""

from .local import Fault, run

__all__ = ["run", "Fault"]
