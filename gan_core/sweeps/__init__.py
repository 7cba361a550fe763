"""Hyperparameter sweeps: one preset, one or two fields each given a list of values, and seeds; one run per cell.

  spec      SweepSpec: the grid, validated against TrainConfig's own types and limits; its cells (name, config);
            the `FIELD=v1,v2` and `0,1` texts the CLI and a form send
  record    a launched sweep (Sweep, SweepCell): started through a RunManager (the actor's quota applies to all its
            cells at once) and kept as sweeps/<id>.json beside the runs, so it is listed again after a restart
  outcomes  how each cell's run ended: its status and, once finished, the evaluation's numbers (2D: modes covered and
            high-quality share; images: classes covered and FCD), cached in the run folder; the summary CSV and JSON
"""
