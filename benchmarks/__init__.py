"""Every benchmark of the GAN explainer and its classroom load test; none of this code is inside gan_core.

    python -m benchmarks [NAME ...]     probe-overhead time-to-quality mode-coverage ui-latency gpu: a Markdown table
    python -m benchmarks.classroom      30 websocket sessions watch one live run (the classroom load test)
    python benchmarks/ui_latency.py     page rerun time and training speed with a page polling a run
    python benchmarks/first_picture.py  seconds to the first picture in Chromium, cold and warm
    benchmarks/gpu_check.sh             the gpu bench and the CUDA tests, on a machine with a GPU

    bench.py    the named benches and the report (`run`)        common.py  Row, the table, the notebook's bare loop
    gpu.py      the gpu bench (CUDA graphs against the bare loop) classroom.py  the load test (tests/load runs it small)
"""
