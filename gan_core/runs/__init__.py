"""Runs over time: the run folder on disk (folder, with its probe_log and tensorboard_log), the one training loop that
trains one to N steps (train_run: the CLI's, and through its hooks the dashboard's background workers': worker,
processes), what a viewer reads of a run (status, state, history), a folder read back after a restart (reload), who may
do what (roles), the RunManager every browser shares (manager), the runs folder's disk budget and leftovers
(housekeeping), and user uploads kept beside the runs (uploads)."""
