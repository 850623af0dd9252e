"""Launching MXNet's parameter server on this machine, bound to 127.0.0.1 only.

MXNet's distributed training (``kvstore='dist_sync'`` / ``'dist_async'``) runs one scheduler,
``S`` servers and ``N`` workers that find each other through ``DMLC_*`` environment variables.
MXNet's stock local launcher picks the host's network address; this one pins every role to
the loopback interface (``DMLC_PS_ROOT_URI=127.0.0.1``, ``DMLC_NODE_HOST=127.0.0.1``,
``DMLC_INTERFACE=lo``) and watches every process:

* any role (scheduler, server or worker) that exits non-zero stops the whole group at once,
  and the launcher names the role (``scheduler``, ``server I``, ``worker I``; ``I`` counts
  in launch order, it is not the kvstore rank) and prints the tail of its stderr (every
  child's stderr is also forwarded, line by line, to the launcher's);
* a scheduler or server that exits 0 while workers still run is legitimate only at the very
  end (ps-lite lets them leave once every worker has finalised its kvstore), so the workers
  get ``server_exit_grace`` seconds to finish; after that the group is stopped as failed;
* the scheduler and servers run under the worker command's Python interpreter (see
  :func:`server_interpreter`), so they import the same MXNet as the workers;
* a timeout, Ctrl-C or SIGTERM stops the whole group (each role in its own process group);
  if the launcher itself is killed (``kill -9``), its children die with it: each gets
  ``PR_SET_PDEATHSIG=SIGKILL`` (Linux) and a small watchdog process kills their process
  groups (grandchildren included) once the launcher is gone.

Inside a worker, :func:`create_dist_kvstore` joins the group with a bounded wait (MXNet's
ps-lite otherwise blocks forever when nobody answers), and :func:`checkpoint_writer`,
:func:`barrier` and :func:`rank0_only` let rank 0 alone write checkpoints and outputs while
the other workers wait for it.

On a real cluster, run the same training command with MXNet's ``tools/launch.py``
(``--launcher ssh -H hosts`` or ``--launcher mpi``); nothing in the training code changes.

Usage::

    python -m mxcompress.distributed --workers 2 --servers 1 -- \\
        python train/train_mnist.py --kv-store dist_sync --network lenet5
"""
import argparse
import collections
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

__all__ = ['LaunchError', 'PSConnectError', 'PSSetupError', 'free_port', 'check_port_free',
           'server_interpreter', 'launch_local', 'connect_timeout', 'wait_for_scheduler',
           'create_dist_kvstore', 'is_dist', 'checkpoint_writer', 'barrier', 'rank0_only',
           'main']

LOOPBACK = '127.0.0.1'
#: environment variable bounding how long a worker waits for the scheduler (seconds)
CONNECT_TIMEOUT_ENV = 'MXCOMPRESS_PS_CONNECT_TIMEOUT'
DEFAULT_CONNECT_TIMEOUT = 60.0
#: how many trailing stderr lines of a failed role the launcher prints
STDERR_TAIL_LINES = 20
_PYTHON_NAME = re.compile(r'^python[0-9.]*$')


class LaunchError(RuntimeError):
    """Bad launcher arguments or an environment in which the group cannot start."""


class PSConnectError(RuntimeError):
    """A worker could not reach the parameter-server scheduler in time."""


class PSSetupError(PSConnectError, ValueError):
    """The environment does not describe a parameter-server group (missing or bad ``DMLC_*``
    variables): bad input, refused before any connection is tried."""


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


def _shebang_python(path):
    """The Python interpreter named by ``path``'s ``#!`` line, or None."""
    try:
        with open(path, 'rb') as f:
            line = f.readline(256)
    except OSError:
        return None
    if not line.startswith(b'#!'):
        return None
    words = line[2:].decode('utf-8', 'replace').split()
    if words and os.path.basename(words[0]) == 'env':
        words = [w for w in words[1:] if not w.startswith('-') and '=' not in w]
    if words and _PYTHON_NAME.match(os.path.basename(words[0])):
        return words[0]
    return None


def server_interpreter(command, path=None):
    """The Python interpreter the scheduler and servers run under for worker ``command``.

    The worker command's first word when it is a Python interpreter (``python``, ``python3``,
    ``.venv/bin/python3.11`` ...), else the interpreter in its ``#!`` line when it is a Python
    script (e.g. a ``.venv/bin/mxcompress`` console script), else the launcher's own
    ``sys.executable``. So the servers import the same MXNet as the workers. ``path``: the
    ``PATH`` searched for a bare script name (default ``$PATH``).
    """
    first = command[0] if command else ''
    if first and _PYTHON_NAME.match(os.path.basename(first)):
        return first
    if first:
        path = first if os.sep in first else shutil.which(first, path=path)
        found = path and _shebang_python(path)
        if found:
            return found
    return sys.executable or 'python3'


def _role_env(base, role, port, num_workers, num_servers):
    env = dict(base)
    env.update({'DMLC_ROLE': role, 'DMLC_PS_ROOT_URI': LOOPBACK, 'DMLC_PS_ROOT_PORT': str(port),
                'DMLC_NUM_WORKER': str(num_workers), 'DMLC_NUM_SERVER': str(num_servers),
                'DMLC_NODE_HOST': LOOPBACK, 'DMLC_INTERFACE': 'lo'})
    return env


# --------------------------------------------------------------------------------------------
# children die with the launcher

_PR_SET_PDEATHSIG = 1
_PRCTL = []


def _prctl():
    """libc's ``prctl`` (resolved once, in the launcher, before any fork), or None."""
    if not _PRCTL:
        func = None
        if sys.platform.startswith('linux'):
            try:
                import ctypes
                func = ctypes.CDLL(None, use_errno=True).prctl
            except (OSError, AttributeError):
                func = None
        _PRCTL.append(func)
    return _PRCTL[0]


def _die_with_parent(parent_pid):
    """``preexec_fn``: SIGKILL this child when the launcher (its parent) dies."""
    prctl = _prctl()

    def preexec():
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent_pid:  # the launcher died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)
    return preexec


#: a process outside the group that reads process-group ids from stdin; at EOF without
#: 'done' (the launcher is gone, e.g. killed with SIGKILL) it kills every group it was given
_WATCHDOG = r'''
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = []
for line in sys.stdin:
    words = line.split()
    if words == ['done']:
        sys.exit(0)
    if len(words) == 2 and words[0] == 'group':
        groups.append(int(words[1]))
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
'''


class _Watchdog:
    def __init__(self):
        self.proc = None
        try:
            self.proc = subprocess.Popen([sys.executable, '-c', _WATCHDOG], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, start_new_session=True)
        except OSError:  # no interpreter to run it: PR_SET_PDEATHSIG still covers the children
            self.proc = None

    def _send(self, text):
        if self.proc is None:
            return
        try:
            self.proc.stdin.write(text.encode())
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass

    def watch(self, pgid):
        self._send('group %d\n' % pgid)

    def release(self):
        """The groups are gone: let the watchdog exit without killing anything."""
        if self.proc is None:
            return
        self._send('done\n')
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------------------------
# the group

class _Role:
    """One started process, its stderr forwarded line by line with the last lines kept."""

    def __init__(self, name, proc):
        self.name, self.proc = name, proc
        self.tail = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.partial = b''

    def feed(self, data, log):
        lines = (self.partial + data).split(b'\n')
        self.partial = lines.pop()
        for line in lines:
            self._emit(line, log)

    def flush(self, log):
        if self.partial:
            self._emit(self.partial, log)
            self.partial = b''

    def _emit(self, line, log):
        text = line.decode('utf-8', 'replace')
        self.tail.append(text)
        log.write(text + '\n')

    def describe(self):
        return '%s (pid %d)' % (self.name, self.proc.pid)


class _Pump:
    """Forward the children's stderr to ``log`` without threads."""

    def __init__(self, log):
        self.log = log
        self.sel = selectors.DefaultSelector()
        self.open = 0

    def add(self, role):
        self.sel.register(role.proc.stderr, selectors.EVENT_READ, role)
        self.open += 1

    def run(self, timeout):
        """Read what is ready within ``timeout`` seconds; True if anything was read."""
        if not self.open:
            time.sleep(timeout)
            return False
        got = False
        for key, _ in self.sel.select(timeout):
            role = key.data
            data = os.read(key.fileobj.fileno(), 65536)
            if data:
                role.feed(data, self.log)
                got = True
            else:
                self.sel.unregister(key.fileobj)
                key.fileobj.close()
                role.flush(self.log)
                self.open -= 1
        try:
            self.log.flush()
        except (OSError, ValueError):
            pass
        return got

    def drain(self, limit=1.0):
        """Read until every pipe is at EOF, nothing more arrives, or ``limit`` seconds."""
        deadline = time.time() + limit
        while self.open and time.time() < deadline:
            if not self.run(min(0.1, max(0.0, deadline - time.time()))):
                break

    def close(self):
        for key in list(self.sel.get_map().values()):
            key.data.flush(self.log)
            self.sel.unregister(key.fileobj)
            key.fileobj.close()
        self.open = 0
        self.sel.close()


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
    # a group whose leader exited may still hold children (e.g. a worker's subprocesses)
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _exit_status(code):
    """A shell-style exit status: ``128 + N`` for a process killed by signal ``N``."""
    return 128 - code if code < 0 else code


def _report(roles, what, log):
    for role in roles:
        code = role.proc.returncode
        status = ('was killed by signal %d' % -code if code < 0 else 'exited with code %d' % code)
        print('launch_local: the %s %s%s; stopping the group'
              % (role.describe(), status, what), file=log)
        if role.tail:
            print('launch_local: last lines of its stderr:', file=log)
            for line in role.tail:
                print('  | ' + line, file=log)
        else:
            print('launch_local: (it wrote nothing to stderr)', file=log)


def _stop_failed(pump, failed, when, log):
    """Report the roles that failed (with their stderr tails); the launcher's exit status."""
    pump.drain(0.5)
    _report(failed, when, log)
    return _exit_status(failed[0].proc.returncode)


def launch_local(num_workers, num_servers, command, port=None, timeout=None, env=None,
                 server_command=None, log=None, server_exit_grace=60.0):
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
        Command run for the scheduler and servers; default ``INTERPRETER -c 'import mxnet'``
        (importing mxnet with a server role runs the server loop), ``INTERPRETER`` from
        :func:`server_interpreter` (the worker command's Python, else ``sys.executable``).
    log : file or None
        Where the launcher's messages and every child's stderr go (default ``sys.stderr``).
    server_exit_grace : float
        Seconds the workers may still run after the scheduler or a server exited with code 0
        (ps-lite lets them leave only once every worker has finalised, so the workers are
        about to end); past it the group is stopped and the launch fails with code 1.

    Returns
    -------
    int
        0 when every worker succeeded; else the exit status of the first role found failed
        (``128 + N`` for a process killed by signal ``N``; the role and the tail of its
        stderr are printed to ``log``), 1 when a scheduler or server left early (see
        ``server_exit_grace``), or 124 on timeout. Every process started is ended before
        returning, and the children die with the launcher if it is killed.
    """
    for arg, value in (('num_workers', num_workers), ('num_servers', num_servers)):
        if int(value) < 1:
            raise LaunchError('%s must be >= 1, got %d' % (arg, value))
    if not command:
        raise LaunchError('no worker command given')
    if port is None:
        port = free_port()
    check_port_free(port)
    log = sys.stderr if log is None else log
    base = dict(os.environ if env is None else env)
    server_command = server_command or [server_interpreter(command, base.get('PATH')), '-c',
                                       'import mxnet']
    roles = []
    pump = _Pump(log)
    watchdog = _Watchdog()
    start = time.time()
    try:
        plan = ([('scheduler', 'scheduler', server_command)]
                + [('server', 'server %d' % i, server_command) for i in range(num_servers)]
                + [('worker', 'worker %d' % i, command) for i in range(num_workers)])
        for dmlc_role, name, cmd in plan:
            try:
                proc = subprocess.Popen(
                    cmd, env=_role_env(base, dmlc_role, port, num_workers, num_servers),
                    stderr=subprocess.PIPE, start_new_session=True,
                    preexec_fn=_die_with_parent(os.getpid()))
            except OSError as err:
                raise LaunchError('cannot start the %s: %s: %s'
                                  % (name, cmd[0], err.strerror or err)) from err
            watchdog.watch(proc.pid)
            role = _Role(name, proc)
            roles.append(role)
            pump.add(role)
            if dmlc_role == 'scheduler':   # servers and workers pick random ports of their
                _wait_listening(proc, port)  # own: start them once the scheduler holds its one
        servers = roles[:num_servers + 1]
        workers = roles[num_servers + 1:]
        servers_left_at = None
        while True:
            pump.run(0.1)
            failed = [r for r in roles if r.proc.poll() not in (None, 0)]
            if failed:
                return _stop_failed(pump, failed, '', log)
            if all(w.proc.returncode == 0 for w in workers):
                break
            left = [s for s in servers if s.proc.returncode == 0]
            if left and servers_left_at is None:
                servers_left_at = time.time()
            if left and time.time() - servers_left_at > server_exit_grace:
                pump.drain(0.5)
                _report(left, ' while %d worker(s) still ran %.0f s later'
                        % (sum(w.proc.returncode is None for w in workers), server_exit_grace),
                        log)
                return 1
            if timeout is not None and time.time() - start > timeout:
                print('launch_local: timeout after %.0f s; stopping the group' % timeout, file=log)
                return 124
        # servers and scheduler leave once the workers have finalised
        deadline = time.time() + 30
        while any(s.proc.poll() is None for s in servers) and time.time() < deadline:
            pump.run(0.1)
        failed = [s for s in servers if s.proc.poll() not in (None, 0)]
        if failed:
            return _stop_failed(pump, failed, ' after the workers finished', log)
        if any(s.proc.returncode is None for s in servers):
            print('launch_local: a server did not exit after the workers; stopping it',
                  file=log)
        return 0
    finally:
        _kill_group([r.proc for r in roles])
        watchdog.release()
        pump.drain(1.0)
        pump.close()


# --------------------------------------------------------------------------------------------
# inside a worker: joining the group, and who writes

def connect_timeout(timeout=None):
    """``timeout``, else ``$MXCOMPRESS_PS_CONNECT_TIMEOUT``, else 60 (seconds, as a float)."""
    if timeout is None:
        text = os.environ.get(CONNECT_TIMEOUT_ENV, '').strip()
        try:
            timeout = float(text) if text else DEFAULT_CONNECT_TIMEOUT
        except ValueError:
            raise PSSetupError('%s must be a number of seconds, got %r'
                                 % (CONNECT_TIMEOUT_ENV, text)) from None
    return float(timeout)


def _scheduler_address(kind):
    host = os.environ.get('DMLC_PS_ROOT_URI')
    port = os.environ.get('DMLC_PS_ROOT_PORT')
    missing = [n for n, v in (('DMLC_ROLE', os.environ.get('DMLC_ROLE')),
                              ('DMLC_PS_ROOT_URI', host), ('DMLC_PS_ROOT_PORT', port),
                              ('DMLC_NUM_WORKER', os.environ.get('DMLC_NUM_WORKER')),
                              ('DMLC_NUM_SERVER', os.environ.get('DMLC_NUM_SERVER'))) if not v]
    if missing:
        raise PSSetupError(
            "kvstore '%s' needs a parameter-server group, but %s %s not set; run the command "
            'under scripts/launch_local.sh (or python -m mxcompress.distributed) or MXNet\'s '
            "tools/launch.py" % (kind, ', '.join(missing), 'is' if len(missing) == 1 else 'are'))
    try:
        return host, int(port)
    except ValueError:
        raise PSSetupError('DMLC_PS_ROOT_PORT must be a port number, got %r' % port) from None


def _wait_listening(proc, port, limit=10.0):
    """Wait (at most ``limit`` seconds) until the scheduler ``proc`` accepts connections on
    ``port``, or exits. A server or worker started earlier could bind the scheduler's port for
    itself (ps-lite nodes pick random ports), and a worker would then register with it."""
    deadline = time.time() + limit
    while proc.poll() is None and time.time() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)


def wait_for_scheduler(host, port, timeout):
    """Wait until ``host:port`` accepts a TCP connection; :class:`PSConnectError` after
    ``timeout`` seconds (``timeout <= 0``: a single try)."""
    deadline = time.time() + max(0.0, timeout)
    last = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=max(0.1, min(
                    2.0, deadline - time.time()))):
                return
        except OSError as err:
            last = err
        if time.time() >= deadline:
            break
        time.sleep(min(0.2, max(0.0, deadline - time.time())))
    raise PSConnectError('no parameter-server scheduler at %s:%d (DMLC_PS_ROOT_URI/PORT) after '
                         '%.0f s (%s); is the launcher running? Raise %s to wait longer'
                         % (host, port, timeout, getattr(last, 'strerror', None) or last,
                            CONNECT_TIMEOUT_ENV))


def create_dist_kvstore(kind='dist_sync', timeout=None):
    """``mx.kvstore.create(kind)`` for a ``dist_*`` kind, with a bounded wait.

    MXNet's ps-lite blocks forever in ``mx.kvstore.create`` when the scheduler never answers or
    the group never completes. Here the worker first waits at most ``timeout`` seconds
    (default :func:`connect_timeout`: ``$MXCOMPRESS_PS_CONNECT_TIMEOUT`` or 60) for the
    scheduler's TCP port (``DMLC_PS_ROOT_URI``:``DMLC_PS_ROOT_PORT``) and raises
    :class:`PSConnectError` otherwise; then it joins the group, and if joining has not
    finished after another ``timeout`` seconds (the scheduler answers but servers or other
    workers never arrive) it prints why and ends the process with exit code 1 -- the thread
    is stuck inside MXNet's C++ code, so no exception can be raised there. ``timeout <= 0``
    waits forever, as MXNet does.
    """
    if 'dist' not in kind:
        raise ValueError("create_dist_kvstore is for dist_* kvstores, got %r" % kind)
    timeout = connect_timeout(timeout)
    host, port = _scheduler_address(kind)
    if timeout > 0:
        wait_for_scheduler(host, port, timeout)
    import mxnet as mx
    if timeout <= 0:
        return mx.kvstore.create(kind)
    joined = threading.Event()

    def give_up():
        if not joined.is_set():
            sys.stderr.write('create_dist_kvstore: joined no %s group at %s:%d within %.0f s '
                             '(the scheduler answered, but the servers or other workers never '
                             'completed the group); exiting with code 1\n'
                             % (kind, host, port, timeout))
            sys.stderr.flush()
            os._exit(1)
    timer = threading.Timer(timeout, give_up)
    timer.daemon = True
    timer.start()
    try:
        return mx.kvstore.create(kind)
    finally:
        joined.set()
        timer.cancel()


def is_dist(kv):
    """Whether ``kv`` is a distributed (parameter-server) kvstore."""
    return kv is not None and not isinstance(kv, str) and 'dist' in kv.type


def checkpoint_writer(kv):
    """True where this process should write checkpoints and outputs: rank 0 of a dist
    kvstore, and always for a local kvstore or none (MXNet's examples save from rank 0)."""
    return not is_dist(kv) or kv.rank == 0


def barrier(kv):
    """Wait for every worker of a dist kvstore (``kv._barrier()``); no-op otherwise.

    Every worker must call it the same number of times, or the group deadlocks."""
    if is_dist(kv):
        kv._barrier()


def rank0_only(kv, callback):
    """Wrap an epoch-end (or any) callback so only :func:`checkpoint_writer` runs it, after
    which every worker waits at :func:`barrier` -- the others never run ahead of (or read)
    a checkpoint rank 0 is still writing. Without a dist kvstore the callback runs as is."""
    if not is_dist(kv):
        return callback

    def _callback(*args, **kwargs):
        try:
            if checkpoint_writer(kv):
                callback(*args, **kwargs)
        finally:
            barrier(kv)
    return _callback


# --------------------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='launch_local', description='Start an MXNet parameter-server group (scheduler, '
        'servers, workers) on 127.0.0.1 only and run COMMAND as every worker. Returns non-zero '
        'if any role fails (naming it, with the tail of its stderr); every process started is '
        'stopped before it returns, and dies with the launcher if the launcher is killed.')
    parser.add_argument('--workers', '-n', type=int, required=True, help='number of workers')
    parser.add_argument('--servers', '-s', type=int, default=1, help='number of servers')
    parser.add_argument('--port', type=int, default=None,
                        help='scheduler port on 127.0.0.1 (default: a free port)')
    parser.add_argument('--timeout', type=float, default=None,
                        help='kill the whole group after this many seconds')
    parser.add_argument('--server-exit-grace', type=float, default=60.0,
                        help='seconds the workers may run on after the scheduler or a server '
                        'exited with code 0 before the launch counts as failed (default 60)')
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='worker command (put -- before it)')
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    # SIGTERM / SIGHUP to the launcher unwind through launch_local's cleanup like Ctrl-C does
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, frame: sys.exit(128 + signum))
    try:
        return launch_local(args.workers, args.servers, command, port=args.port,
                            timeout=args.timeout, server_exit_grace=args.server_exit_grace)
    except LaunchError as err:
        print('launch_local: error: %s' % err, file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the group was already stopped on the way out
        print('launch_local: interrupted; the group was stopped', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
