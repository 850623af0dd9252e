#!/usr/bin/env bash
# Run an MXNet parameter-server job on this machine, bound to 127.0.0.1 only:
#
#   scripts/launch_local.sh N_WORKERS N_SERVERS COMMAND...
#   scripts/launch_local.sh 2 1 .venv/bin/python train/train_mnist.py --kv-store dist_sync
#
# Starts the scheduler, N_SERVERS servers and N_WORKERS copies of COMMAND with DMLC_* set for
# loopback, waits for all of them and returns non-zero if any worker fails (the rest are then
# stopped). Set LAUNCH_TIMEOUT (seconds) to bound the run, LAUNCH_PORT to fix the port.
# On a cluster use MXNet's tools/launch.py with the same COMMAND (see README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 3 ]; then
  echo "usage: $0 N_WORKERS N_SERVERS COMMAND..." >&2; exit 2
fi
workers=$1; servers=$2; shift 2
python=${PYTHON:-}
[ -n "$python" ] || { [ -x "$root/.venv/bin/python" ] && python=$root/.venv/bin/python || python=python3; }
extra=()
[ -n "${LAUNCH_TIMEOUT:-}" ] && extra+=(--timeout "$LAUNCH_TIMEOUT")
[ -n "${LAUNCH_PORT:-}" ] && extra+=(--port "$LAUNCH_PORT")
exec "$python" -m mxcompress.distributed --workers "$workers" --servers "$servers" "${extra[@]}" -- "$@"
