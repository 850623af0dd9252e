#!/usr/bin/env bash
# Install mxcompress into .venv (if needed) and run the whole test suite.
# MNIST is read from $MXCOMPRESS_DATA, else ../shared/data/mnist, else fetched with
# scripts/get_mnist.sh into ~/.mxnet/datasets/mnist. Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=$(bash "$root/scripts/setup_venv.sh")
if [ -z "${MXCOMPRESS_DATA:-}" ]; then
  if [ -f "$root/../shared/data/mnist/train-images-idx3-ubyte.gz" ]; then
    export MXCOMPRESS_DATA=$(cd "$root/../shared/data/mnist" && pwd)
  else
    PYTHON=$python bash "$root/scripts/get_mnist.sh"
    export MXCOMPRESS_DATA=$HOME/.mxnet/datasets/mnist
  fi
fi
cd "$root"
exec "$python" -m pytest -q tests "$@"
