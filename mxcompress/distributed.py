"""Launching MXNet's parameter server on this machine, bound to 127.0.0.1 only.

MXNet's distributed training (``kvstore='dist_sync'`` / ``'dist_async'``) runs one scheduler,
``S`` servers and ``N`` workers that find each other through ``DMLC_*`` environment variables.
MXNet's stock local launcher picks the host's network address; this one pins every role to
the loopback interface (``DMLC_PS_ROOT_URI=127.0.0.1``, ``DMLC_NODE_HOST=127.0.0.1``,
``DMLC_INTERFACE=lo``), waits for every process, and tears the whole group down when a worker
fails, on a timeout, or on Ctrl-C, so no process is orphaned.

On a real cluster, run the same training command with MXNet's ``tools/launch.py``
(``--launcher ssh -H hosts`` or ``--launcher mpi``); nothing in the training code changes.

Usage::

    python -m mxcompress.distributed --workers 2 --servers 1 -- \\
        python train/train_mnist.py --kv-store dist_sync --network lenet5
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time

__all__ = ['LaunchError', 'free_port', 'check_port_free', 'launch_local', 'main']

LOOPBACK = '127.0.0.1'


class LaunchError(RuntimeError):
    """Bad launcher arguments or an environment in which the group cannot start."""


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def check_port_free(port):
    """Raise :class:`LaunchError` if ``port`` on 127.0.0.1 cannot be bound."""
    if not 1024 <= port <= 65535:
        raise LaunchError('port must be in 1024..65535, got %d' % port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError as err:
            raise LaunchError('port %d on %s is in use (%s); choose another with --port'
                              % (port, LOOPBACK, err.strerror)) from err


def _role_env(base, role, port, num_workers, num_servers):
    env = dict(base)
    env.update({'DMLC_ROLE': role, 'DMLC_PS_ROOT_URI': LOOPBACK, 'DMLC_PS_ROOT_PORT': str(port),
                'DMLC_NUM_WORKER': str(num_workers), 'DMLC_NUM_SERVER': str(num_servers),
                'DMLC_NODE_HOST': LOOPBACK, 'DMLC_INTERFACE': 'lo'})
    return env


def _kill_group(procs, grace=5.0):
    """SIGTERM every live process group, then SIGKILL what is left after ``grace`` seconds."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + grace
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def launch_local(num_workers, num_servers, command, port=None, timeout=None, env=None,
                 server_command=None, log=sys.stderr):
    """Run ``command`` as ``num_workers`` workers with a scheduler and ``num_servers`` servers.

    Parameters
    ----------
    num_workers, num_servers : int
        At least 1 each.
    command : list of str
        The worker command; each worker gets ``DMLC_ROLE=worker`` and the other ``DMLC_*``
        variables, so ``mx.kv.create('dist_sync')`` inside it joins the group.
    port : int or None
        Scheduler port on 127.0.0.1; default a free one.
    timeout : float or None
        Seconds before the whole group is killed (return code 124).
    env : dict or None
        Base environment (default ``os.environ``).
    server_command : list of str or None
        Command run for the scheduler and servers; default ``python -c 'import mxnet'``
        (importing mxnet with a server role runs the server loop).

    Returns
    -------
    int
        0 when every worker succeeded, else the first failing worker's return code (or 124
        on timeout). Every process started is ended before returning.
    """
    for arg, value in (('num_workers', num_workers), ('num_servers', num_servers)):
        if int(value) < 1:
            raise LaunchError('%s must be >= 1, got %d' % (arg, value))
    if not command:
        raise LaunchError('no worker command given')
    if port is None:
        port = free_port()
    check_port_free(port)
    base = dict(os.environ if env is None else env)
    server_command = server_command or [sys.executable, '-c', 'import mxnet']
    procs, workers = [], []
    start = time.time()
    try:
        roles = [('scheduler', server_command)] + [('server', server_command)] * num_servers
        for role, cmd in roles:
            procs.append(subprocess.Popen(cmd, env=_role_env(base, role, port, num_workers,
                                                             num_servers),
                                          start_new_session=True))
        for _ in range(num_workers):
            proc = subprocess.Popen(command, env=_role_env(base, 'worker', port, num_workers,
                                                           num_servers), start_new_session=True)
            procs.append(proc)
            workers.append(proc)
        while True:
            codes = [w.poll() for w in workers]
            failed = [c for c in codes if c not in (None, 0)]
            if failed:
                print('launch_local: a worker exited with code %d; stopping the group'
                      % failed[0], file=log)
                return failed[0]
            if all(c == 0 for c in codes):
                break
            if timeout is not None and time.time() - start > timeout:
                print('launch_local: timeout after %.0f s; stopping the group' % timeout, file=log)
                return 124
            time.sleep(0.1)
        # servers and scheduler leave once the workers have finalised
        for proc in procs[:num_servers + 1]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print('launch_local: a server did not exit after the workers; stopping it',
                      file=log)
        return 0
    finally:
        _kill_group(procs)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='launch_local', description='Start an MXNet parameter-server group (scheduler, '
        'servers, workers) on 127.0.0.1 only and run COMMAND as every worker. Returns non-zero '
        'if any worker fails; every process started is stopped before it returns.')
    parser.add_argument('--workers', '-n', type=int, required=True, help='number of workers')
    parser.add_argument('--servers', '-s', type=int, default=1, help='number of servers')
    parser.add_argument('--port', type=int, default=None,
                        help='scheduler port on 127.0.0.1 (default: a free port)')
    parser.add_argument('--timeout', type=float, default=None,
                        help='kill the whole group after this many seconds')
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='worker command (put -- before it)')
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    # a SIGTERM to the launcher unwinds through launch_local's cleanup like Ctrl-C does
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        return launch_local(args.workers, args.servers, command, port=args.port,
                            timeout=args.timeout)
    except LaunchError as err:
        print('launch_local: error: %s' % err, file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
