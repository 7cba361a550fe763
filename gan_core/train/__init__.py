"""One training step and what it returns: records, the networks (models), their objectives (losses), the probes the
lessons read, the eager step (trainer.Trainer.step) and the same step replayed as CUDA graphs (cuda_graphs)."""
