"""What the lesson pages explain, as UI-free functions: the formulas (explain), controllable generation (control), the
VAE (vae), a finished run's generator (saved_generator) and the one-click comparison runs (comparisons)."""
