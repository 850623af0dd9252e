#!/usr/bin/env bash
# Run an MXNet parameter-server job on this machine, bound to 127.0.0.1 only:
#
#   scripts/launch_local.sh N_WORKERS N_SERVERS COMMAND...
#   scripts/launch_local.sh 2 1 .venv/bin/python train/train_mnist.py --kv-store dist_sync
#
# Starts the scheduler, N_SERVERS servers and N_WORKERS copies of COMMAND with DMLC_* set for
# loopback and waits for all of them. If any of them (scheduler, server or worker) fails, the
# whole group is stopped at once and the launcher names the failed role with the tail of its
# stderr and exits non-zero; killing the launcher (even with kill -9) kills the group too.
# The scheduler and servers run under COMMAND's Python interpreter when COMMAND starts with
# one (or is a Python script), else under the launcher's interpreter, chosen as: $PYTHON, else
# COMMAND's first word if it is a python interpreter, else .venv/bin/python, else python3 --
# and it must be able to import mxnet. Set LAUNCH_TIMEOUT (seconds) to bound the run,
# LAUNCH_PORT to fix the port. On a cluster use MXNet's tools/launch.py with the same COMMAND
# (see README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 3 ]; then
  echo "usage: $0 N_WORKERS N_SERVERS COMMAND..." >&2; exit 2
fi
workers=$1; servers=$2; shift 2
python=${PYTHON:-}
if [ -z "$python" ] && [[ $(basename -- "$1") =~ ^python[0-9.]*$ ]]; then
  python=$1
fi
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python=$root/.venv/bin/python; else python=python3; fi
fi
if ! "$python" -c 'import mxnet' >/dev/null 2>&1; then
  echo "launch_local.sh: '$python' cannot import mxnet; set PYTHON to an interpreter with MXNet 1.9 (scripts/setup_venv.sh makes .venv)" >&2
  exit 2
fi
extra=()
[ -n "${LAUNCH_TIMEOUT:-}" ] && extra+=(--timeout "$LAUNCH_TIMEOUT")
[ -n "${LAUNCH_PORT:-}" ] && extra+=(--port "$LAUNCH_PORT")
# the launcher imports mxcompress from this checkout without adding it to the workers' PYTHONPATH
exec "$python" -c 'import sys; sys.path.insert(0, sys.argv.pop(1))
from mxcompress.distributed import main
sys.exit(main())' "$root" --workers "$workers" --servers "$servers" "${extra[@]}" -- "$@"
