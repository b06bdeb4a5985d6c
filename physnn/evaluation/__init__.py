"""Evaluation: metrics (ROC/AUC, calibration, coverage) and plots from predictions files."""
