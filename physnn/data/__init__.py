"""Awkward/numpy -> torch: shapes, padding and masks, standardisation, splits, datasets."""
