"""What the lesson pages explain, as UI-free functions: the formulas (explain), controllable generation (control), the
VAE (vae), a finished run's generator (saved_generator), the one-click comparison runs (comparisons), the server's
latest comparison of each kind (shared_comparisons) and the room's predictions before it runs (predictions)."""
