"""`python -m benchmarks [NAME ...]`: bench.main. `python -m gan_core bench [NAME ...]` runs this module too."""

import sys

from benchmarks.bench import main

sys.exit(main())
