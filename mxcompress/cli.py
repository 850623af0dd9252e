"""The ``mxcompress`` command: one subcommand per job.

Each subcommand module of :mod:`mxcompress.commands` exposes ``add_parser(subparsers)`` that
registers its parser with ``func=run(args)``; :data:`~mxcompress.commands.COMMANDS` lists them.
"""
import argparse
import sys

from .commands import COMMANDS, command_module, run_parsed
from .logs import setup_logging

#: commands that always log their progress (long training runs)
ALWAYS_VERBOSE = ('train', 'train-bnn')


def build_parser():
    parser = argparse.ArgumentParser(
        prog='mxcompress', description='Compress MXNet convolutional networks and measure the '
        'result. Run `mxcompress COMMAND --help` for the options of each command.')
    parser.add_argument('-v', '--verbose', action='store_true', help='log progress (INFO)')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    for name in COMMANDS:
        command_module(name).add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(verbose=args.verbose or args.command in ALWAYS_VERBOSE)
    return run_parsed(args)


if __name__ == '__main__':
    sys.exit(main())
