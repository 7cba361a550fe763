"""Every benchmark of the GAN explainer and its classroom load test; none of this code is inside gan_core.

    python -m benchmarks [NAME ...]     the one entry: the named benches (see --help), a Markdown table
    python -m benchmarks.classroom      N websocket sessions watch one live run (the classroom load test)
    python benchmarks/ui_latency.py     page rerun time and training speed with a page polling a run
    python benchmarks/first_picture.py  seconds to the first picture in Chromium, cold and warm
    benchmarks/gpu_check.sh             on a CUDA machine: the gpu bench and the CUDA tests

bench.py holds the named benches and the report; gpu.py the gpu bench; common.py what both use (Row, the table, the
course notebook's bare loop); classroom.py the load test, which tests/load/test_classroom.py runs small;
browser_session.py the browser tab it emulates thirty times. The app server they start comes from support/ (shared
with the tests, owned by neither): nothing here imports tests/.
"""
