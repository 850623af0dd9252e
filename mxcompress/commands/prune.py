"""``mxcompress prune``: prune a checkpoint, fine-tune it, write it and its per-layer report."""
import argparse

from ..pruning.runner import DESCRIPTION, add_prune_args, print_summary, run_prune


def add_parser(sub):
    parser = sub.add_parser('prune', help='prune a checkpoint (magnitude, Han threshold, global, '
                            'AGP, filter removal, slimming) and fine-tune it',
                            description=DESCRIPTION, conflict_handler='resolve',
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prune_args(parser)
    parser.set_defaults(func=run)


def run(args):
    *_, record = run_prune(args)
    print_summary(record)
