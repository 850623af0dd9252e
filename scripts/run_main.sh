#!/usr/bin/env bash
# The project's main job, end to end from a fresh machine: install into .venv, fetch MNIST
# (checksummed) unless $MXCOMPRESS_DATA points at it, train LeNet-5 and print its test error.
# Idempotent: reruns reuse the environment and the data. Extra arguments go to the trainer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=$(bash "$root/scripts/setup_venv.sh")
if [ -z "${MXCOMPRESS_DATA:-}" ]; then
  PYTHON=$python bash "$root/scripts/get_mnist.sh"
fi
mkdir -p "$root/out"
exec "$python" "$root/train/train_mnist.py" --network lenet5 --num-epochs 10 --lr 0.02 \
  --wd 5e-4 --lr-schedule cosine --jitter 2 --model-prefix "$root/out/lenet5" "$@"
