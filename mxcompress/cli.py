"""The ``mxcompress`` command: one subcommand per job.

Each subcommand module exposes ``add_parser(subparsers)`` that registers its parser with
``func=run(args)``; :data:`COMMANDS` lists them.
"""
import argparse
import importlib
import logging
import sys

from .checkpoint import CheckpointError
from .data import MNISTError

#: subcommand modules (in mxcompress.commands) in --help order
COMMANDS = ['train', 'networks', 'summary', 'report', 'prune', 'lowrank', 'pack', 'unpack', 'info', 'deep-compress', 'train-bnn', 'xnor-convert', 'distill']


def build_parser():
    parser = argparse.ArgumentParser(
        prog='mxcompress', description='Compress MXNet convolutional networks and measure the '
        'result. Run `mxcompress COMMAND --help` for the options of each command.')
    parser.add_argument('-v', '--verbose', action='store_true', help='log progress (INFO)')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    for name in COMMANDS:
        importlib.import_module('.commands.' + name.replace('-', '_'), __package__).add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = args.verbose or args.command in ('train', 'train-bnn')
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format='%(asctime)s %(message)s')
    try:
        return args.func(args) or 0
    except (MNISTError, CheckpointError, ValueError) as err:
        print('mxcompress %s: error: %s' % (args.command, err), file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
