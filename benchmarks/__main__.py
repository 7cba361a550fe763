"""`python -m benchmarks [NAME ...]`, the one entry to the benchmarks (run from the repository's root): bench.main."""

import sys

from benchmarks.bench import main

sys.exit(main())
