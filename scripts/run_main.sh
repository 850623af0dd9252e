#!/usr/bin/env bash
# The main job: Deep Compression end to end from a fresh machine (idempotent): install into
# .venv, fetch MNIST (checksummed) unless $MXCOMPRESS_DATA points at it, then prune -> quantise
# -> Huffman the committed LeNet-300-100 baseline (benchmarks/models/lenet300) into
# out/lenet300.mxc with the recipe of the committed benchmarks/models/lenet300.mxc
# (mxcompress/reporting/recipes.py), print the stage ratios and errors, unpack the file and
# print its byte breakdown.
# Usage: bash scripts/run_main.sh [NETWORK] [extra deep-compress options]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=$(bash "$root/scripts/setup_venv.sh")
if [ -z "${MXCOMPRESS_DATA:-}" ]; then
  PYTHON=$python bash "$root/scripts/get_mnist.sh"
fi
network=${1:-lenet300}
shift || true
recipe=$("$python" -m mxcompress.reporting.recipes deep-compress "$network") || exit 2
mapfile -t options <<< "$recipe"
mkdir -p "$root/out"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
"$python" -m mxcompress.cli deep-compress "$root/benchmarks/models/$network" \
  --output "$root/out/$network.mxc" "${options[@]}" "$@"
"$python" -m mxcompress.cli unpack "$root/out/$network.mxc" --output "$root/out/$network-unpacked"
"$python" -m mxcompress.cli info "$root/out/$network.mxc"
