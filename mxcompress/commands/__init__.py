"""The runners: one module per ``mxcompress`` subcommand, each with ``add_parser(subparsers)``.

A runner reads the data, calls the library (``mxcompress.<family>``) and the network
builders (``symbols``), prints the result and writes the outputs. The library never imports
this package.

:func:`report_errors` is the one place where a failure becomes a one-line message naming the
file or option and the cause: exit status 2 for bad input (a bad option, file or checkpoint:
``ValueError`` and its subclasses), 1 for a failure at run time (training diverged, disk full,
read-only output, an MXNet error). The traceback is printed only with ``--verbose`` (or
``MXCOMPRESS_VERBOSE=1`` for the ``train/*.py`` scripts). :func:`standalone_main` runs one
subcommand as a script.
"""
import argparse
import importlib
import os
import sys
import traceback

from ..checkpoint import check_output_prefix, manifest_path, params_path, states_path
from ..fit import input_shape
from ..logs import setup_logging

__all__ = ['COMMANDS', 'command_module', 'run_parsed', 'report_errors', 'standalone_main',
           'script_main', 'checkpoint_files', 'data_example_shape', 'check_outputs', 'BAD_INPUT', 'RUNTIME_FAILURE']

#: exit status of a command refused for bad input (options, files, checkpoints)
BAD_INPUT = 2
#: exit status of a command that failed while running
RUNTIME_FAILURE = 1

#: subcommand names (module ``mxcompress.commands.<name with _>``) in --help order
COMMANDS = ['train', 'networks', 'summary', 'report', 'prune', 'lowrank', 'pack', 'unpack', 'info',
            'deep-compress', 'train-bnn', 'xnor-convert', 'distill', 'fold-bn', 'export',
            'convert-data']


def command_module(name):
    """The runner module of subcommand ``name`` (e.g. ``'train-bnn'``)."""
    return importlib.import_module('.' + name.replace('-', '_'), __name__)


def _describe(err):
    if isinstance(err, OSError) and err.filename:
        return '%s: %s' % (err.filename, err.strerror or err)
    text = str(err).strip() or type(err).__name__
    return text.split('\n')[0] if not isinstance(err, ValueError) else text


def report_errors(prog, func, args, verbose=False):
    """Run ``func(args)``; return its exit status, turning any failure into one line on stderr.

    Returns 0 (or what ``func`` returned), :data:`BAD_INPUT` for a ``ValueError`` (bad option,
    file, checkpoint), :data:`RUNTIME_FAILURE` for anything else. ``KeyboardInterrupt``
    passes through.
    """
    verbose = verbose or os.environ.get('MXCOMPRESS_VERBOSE') == '1'
    try:
        return func(args) or 0
    except Exception as err:   # noqa: BLE001 -- every failure becomes one line
        if verbose:
            traceback.print_exc()
        status = BAD_INPUT if isinstance(err, ValueError) else RUNTIME_FAILURE
        kind = '' if isinstance(err, (ValueError, OSError)) else type(err).__name__ + ': '
        hint = ' (--verbose shows the traceback)' if status == RUNTIME_FAILURE and not verbose \
            else ''
        print('%s: error: %s%s%s' % (prog, kind, _describe(err), hint), file=sys.stderr)
        return status


def run_parsed(args):
    """Run a parsed subcommand (``args.func``) under :func:`report_errors`."""
    return report_errors('mxcompress %s' % args.command, args.func, args,
                         verbose=getattr(args, 'verbose', False))


def script_main(parser, run, argv=None):
    """A ``train/*.py`` script: parse ``argv``, log progress, ``run(args)`` under
    :func:`report_errors`; returns the exit status."""
    args = parser.parse_args(argv)
    setup_logging()
    return report_errors(parser.prog, run, args)


def data_example_shape(args, needs_data=True):
    """``(C, H, W)`` of the data set the options of ``args`` name (``--data-shape`` first), or
    None when the shape is the checkpoint's to tell: no data to read (a rewrite that needs
    none), or no ``--data`` given to a command that reads no data (the default MNIST must not
    impose 1 x 28 x 28 on, say, a 3-channel gluoncv export)."""
    if getattr(args, 'data_shape', None):
        return tuple(args.data_shape)
    if not needs_data and getattr(args, 'data_dir', None) is None:
        return None
    try:
        return input_shape(args)[1:]
    except ValueError:   # no data set there (MNISTError / DataError): shapes from the model
        return None


def checkpoint_files(prefix, epoch):
    """The files a checkpoint is read from (so no output may overwrite them)."""
    params = params_path(prefix, epoch)
    return [prefix + '-symbol.json', params, params + '.sha256', manifest_path(prefix, epoch),
            states_path(prefix, epoch)]


def check_outputs(args, prefixes=(), files=(), inputs=()):
    """Check every output option before any work (see
    :func:`mxcompress.checkpoint.check_output_prefix`); ``prefixes`` / ``files`` name options
    of ``args`` (dest names), unset ones are skipped."""
    for dest in prefixes:
        if getattr(args, dest, None):
            check_output_prefix(getattr(args, dest), inputs, '--' + dest.replace('_', '-'))
    for dest in files:
        if getattr(args, dest, None):
            check_output_prefix(getattr(args, dest), inputs, '--' + dest.replace('_', '-'),
                                is_file=True)


def standalone_main(name, argv=None):
    """Run subcommand ``name`` as a script: its own options, progress logged, exit status."""
    parser = argparse.ArgumentParser(prog='mxcompress')
    sub = parser.add_subparsers(dest='command')
    command_module(name).add_parser(sub)
    args = parser.parse_args([name] + list(sys.argv[1:] if argv is None else argv))
    setup_logging(verbose=True)
    return run_parsed(args)
