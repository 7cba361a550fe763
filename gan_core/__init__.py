"""gan_core: the engine of the GAN explainer. It trains small GANs and records what a lesson needs; it never imports
streamlit or plotly, so everything here runs (and is tested) without a browser.

The map, in the order a step's data flows:

    config.py      TrainConfig: every option as a typed field with its limits beside it; the presets
    shapes.py      every network's layer sizes as numbers (config counts weights from them before building anything)
    data.py        the data sources: 2D mixtures, CSV points, bundled 8×8 digits, MNIST via torchvision
    drawing.py     2D points drawn with the mouse: a canvas's objects to points, checked, saved as a points CSV
    setup_link.py  a training setup as address-bar parameters and back (the preset and what differs from it)
    pictures.py    samples as pixels (image grids, 2D dots, PNG bytes), for the pages and TensorBoard alike
    charts.py      line and bar charts as PNG bytes (Pillow), for the files a teacher takes home
    train/         one training step: records (what a step returns), models, losses, probes,
                   trainer (the eager D and G updates: start reading at Trainer.step), cuda_graphs (the same step on a GPU)
    runs/          runs over time: folder (the run folder on disk), probe_log (its probes.jsonl), tensorboard_log,
                   train_run (the one training loop: CLI and workers), worker and processes (the dashboard's workers),
                   status, state and history (what a viewer reads), reload (a folder read back after a restart),
                   roles (who may do what), manager (RunManager: every browser's runs) and scheduling (its queue
                   and workers), sharing and mirror (several app processes on one folder: one trains, the others send
                   it orders and read the folder), housekeeping (the runs folder's disk budget and leftovers), uploads
                   (user CSVs), ray_backend, ray_driver and ray_relay (runs on a Ray cluster, optional: the server
                   stays the one writer of run folders)
    classroom/     the room every app process shares: store (SQLite or PostgreSQL), stage (what the presenter shows),
                   lease (which process trains), orders (what the others ask of it), pace (wrong key guesses),
                   join (where students join: the address they open and its QR code)
    evaluation/    how good a run is: metrics, mode coverage over snapshots, the cached classifier, `eval`,
                   rejection (discriminator rejection sampling: keep G's samples by D's logit)
    sweeps/        hyperparameter grids: spec (SweepSpec, its cells), record (launch; sweeps/<id>.json), outcomes
                   (each finished cell's evaluation, cached in its run folder; the summary)
    lessons/       what the lesson pages explain: the maths (explain), controllable generation, the VAE,
                   a finished run's generator, one-click comparison runs, the room's shared comparisons,
                   the room's predictions, what a comparison's runs measured (outcomes) and the lesson's files (export)
    cli.py         `python -m gan_core presets | train | sample | eval | sweep | serve`
    hall.py        `serve`: a lecture hall, N app processes behind HAProxy (it starts programs, imports no UI)

Importing this package imports nothing: each module pulls in torch only when it is used.
"""
