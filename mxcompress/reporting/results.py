"""Benchmark result files (``benchmarks/results/*.json``): merged and written atomically."""
import contextlib
import datetime
import fcntl
import json
import os
import tempfile

from ..checkpoint import atomic_path

__all__ = ['update_results', 'annotate_results', 'read_results']


def read_results(path):
    """The JSON object in ``path``, or an empty dict when the file does not exist."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


@contextlib.contextmanager
def _locked(path):
    """Hold the lock of the results file ``path`` (benchmark stages run as parallel processes)."""
    lock_path = os.path.join(tempfile.gettempdir(),
                             'mxcompress-results-%s.lock' % os.path.basename(path))
    with open(lock_path, 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write(path, results):
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(results, f, indent=2, sort_keys=True)
            f.write('\n')


def update_results(path, entries, machine=None):
    """Merge ``entries`` (name -> record) into the results file ``path`` atomically.

    Records under other names are kept, so benchmarks can fill one file piece by piece; a
    lock per file serialises writers, so parallel stages never lose each other's records.
    Each record gets a UTC ``measured_at`` time; ``machine`` (see
    :func:`mxcompress.measure.machine_info`) is stored at the top level.
    """
    with _locked(path):
        results = read_results(path)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        for name, record in entries.items():
            results[name] = dict(record, measured_at=stamp)
        if machine is not None:
            results['machine'] = machine
        _write(path, results)
    return results


def annotate_results(path, notes):
    """Add fields to existing records of ``path`` without re-measuring or re-stamping them.

    Parameters
    ----------
    notes : dict
        Record name -> fields to set (e.g. where a record's choices were made); a name not in
        the file raises KeyError (a typo must not pass silently).
    """
    with _locked(path):
        results = read_results(path)
        for name, fields in notes.items():
            if name not in results:
                raise KeyError('%s has no record %r' % (path, name))
            results[name].update(fields)
        _write(path, results)
    return results
