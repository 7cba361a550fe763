"""What the lesson pages explain, as UI-free functions: the formulas (explain), W-loss, the earth mover's distance and
the gradient penalty (wloss), stacked linear layers and the gradient a unit gets (units), controllable generation
(control, with the course lab's step size in ascent_steps), the VAE (vae), a finished run's generator
(saved_generator), the one-click comparison runs (comparisons), the server's latest comparison of each kind
(shared_comparisons) and the room's predictions before it runs (predictions)."""
