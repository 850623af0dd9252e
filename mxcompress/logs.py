"""One logging set-up for every entry point (the CLI, ``train/*.py``, ``scripts/bench_*.py``).

The library itself never configures logging: it logs to ``logging.getLogger('mxcompress')``
(and MXNet's Speedometer to the root logger); an entry point calls :func:`setup_logging` once.
"""
import logging

__all__ = ['LOG_FORMAT', 'setup_logging']

#: time-stamped messages, as MXNet's own training examples print them
LOG_FORMAT = '%(asctime)s %(message)s'


def setup_logging(verbose=True, logger=None):
    """Send log records to stderr: INFO and above when ``verbose``, else WARNING and above.

    Safe to call again: a later call only changes the level (a command that always reports
    progress raises it to INFO after the CLI's default set-up). ``logger`` names the one
    logger whose level is set (e.g. ``'mxcompress'``: the toolkit's own progress lines but not
    MXNet's per-batch Speedometer); None sets the root logger's.
    """
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level if logger is None else logging.WARNING, format=LOG_FORMAT)
    logging.getLogger(logger).setLevel(level)
