#!/usr/bin/env bash
# The main job: Deep Compression end to end from a fresh machine (idempotent): install into .venv, fetch MNIST
# (checksummed) unless $MXCOMPRESS_DATA points at it, then prune -> quantise -> Huffman the
# committed LeNet-300-100 baseline (benchmarks/models/lenet300) into out/lenet300.mxc, print
# the stage ratios and errors, unpack the file and print its byte breakdown.
# Usage: bash scripts/run_main.sh [NETWORK] [extra deep-compress options]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=$(bash "$root/scripts/setup_venv.sh")
if [ -z "${MXCOMPRESS_DATA:-}" ]; then
  PYTHON=$python bash "$root/scripts/get_mnist.sh"
fi
network=${1:-lenet300}
shift || true
case "$network" in
  lenet300) sparsity=lenet300_fc1=0.96,lenet300_fc2=0.9,lenet300_fc3=0.7 ;;
  lenet5) sparsity=lenet5_conv1=0.5,lenet5_conv2=0.88,lenet5_fc1=0.975,lenet5_fc2=0.85 ;;
  *) echo "network must be lenet300 or lenet5, got $network" >&2; exit 2 ;;
esac
mkdir -p "$root/out"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
"$python" -m mxcompress.cli deep-compress "$root/benchmarks/models/$network" \
  --output "$root/out/$network.mxc" --sparsity "$sparsity" --prune-steps 4 --prune-epochs 3 \
  --quant-epochs 3 --lr 0.005 --quant-lr 0.002 "$@"
"$python" -m mxcompress.cli unpack "$root/out/$network.mxc" --output "$root/out/$network-unpacked"
"$python" -m mxcompress.cli info "$root/out/$network.mxc"
