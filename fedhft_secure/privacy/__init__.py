"""Differential privacy: DP-SGD, privacy events and accountants, protected sketches, audit, report."""
