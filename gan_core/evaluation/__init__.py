"""How good a run is: sample metrics (metrics), coverage over a run's snapshots (coverage), the cached digit classifier
(classifier, cache), discriminator rejection sampling (rejection: keep G's samples by D's logit) and the numbers
`python -m gan_core eval` prints (evaluate)."""
