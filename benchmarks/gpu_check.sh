#!/usr/bin/env bash
# The accelerated path on a CUDA GPU, in one command (about 2 minutes, at most 5):
#   1. the gpu bench (the course's first GAN: the notebook's eager loop against the Trainer's CUDA graphs), as a table;
#   2. tests/test_accel.py and tests/test_accel_cuda.py with the CUDA tests required (GAN_REQUIRE_CUDA=1: they fail instead of skipping).
# Usage, from anywhere: benchmarks/gpu_check.sh [MNIST_DATA_DIR]   (the folder holding MNIST/raw; without it, or without
# MNIST there, the bench looks in GAN_DATA_DIR, ../shared/data, data/, then trains on random tensors of MNIST's shape)
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA GPU (torch.cuda.is_available() is False)')"
export GAN_OFFLINE=1  # never try to download MNIST
if [ $# -ge 1 ]; then export GAN_DATA_DIR="$1"; fi

status=0
timeout 180 python -m benchmarks gpu || status=$?
echo
GAN_REQUIRE_CUDA=1 timeout 110 python -m pytest -q -p no:cacheprovider tests/test_accel.py tests/test_accel_cuda.py || status=$?
exit $status
