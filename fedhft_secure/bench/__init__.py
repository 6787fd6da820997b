"""Security benchmarks: attacks and fuzzing against the protocols, checked against the threat models."""
