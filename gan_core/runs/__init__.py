"""Runs over time: the run folder on disk (folder), training one to N steps (train_run), the dashboard's background
workers (worker, processes), what a viewer reads of a run (state, history), the RunManager every browser shares
(manager), and user uploads kept beside the runs (uploads)."""
