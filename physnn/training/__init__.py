"""Training: the run config, the one training loop, checkpoints and transfer learning."""
