"""Inference: deterministic and MC-dropout predictions, written back to ROOT."""
