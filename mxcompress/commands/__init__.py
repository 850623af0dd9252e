"""The runners: one module per ``mxcompress`` subcommand, each with ``add_parser(subparsers)``.

A runner reads the data, calls the library (``mxcompress.<family>``) and the network
builders (``symbols``), prints the result and writes the outputs. The library never imports
this package. :func:`run_parsed` is the one place where a command's expected errors become a
one-line message and exit status 2; :func:`standalone_main` runs one subcommand as a script
(``train/*.py``).
"""
import argparse
import importlib
import sys

from ..checkpoint import CheckpointError
from ..data import MNISTError
from ..logs import setup_logging

__all__ = ['COMMANDS', 'command_module', 'run_parsed', 'standalone_main']

#: subcommand names (module ``mxcompress.commands.<name with _>``) in --help order
COMMANDS = ['train', 'networks', 'summary', 'report', 'prune', 'lowrank', 'pack', 'unpack', 'info',
            'deep-compress', 'train-bnn', 'xnor-convert', 'distill']


def command_module(name):
    """The runner module of subcommand ``name`` (e.g. ``'train-bnn'``)."""
    return importlib.import_module('.' + name.replace('-', '_'), __name__)


def run_parsed(args):
    """Run a parsed subcommand (``args.func``); expected errors print one line and return 2."""
    try:
        return args.func(args) or 0
    except (MNISTError, CheckpointError, ValueError) as err:
        print('mxcompress %s: error: %s' % (args.command, err), file=sys.stderr)
        return 2


def standalone_main(name, argv=None):
    """Run subcommand ``name`` as a script: its own options, progress logged, exit status."""
    parser = argparse.ArgumentParser(prog='mxcompress')
    sub = parser.add_subparsers(dest='command')
    command_module(name).add_parser(sub)
    args = parser.parse_args([name] + list(sys.argv[1:] if argv is None else argv))
    setup_logging(verbose=True)
    return run_parsed(args)
