"""``mxcompress distill``: train a student by knowledge distillation."""
import argparse

from ..kd_train import add_kd_args, print_kd_result, run_kd


def add_parser(sub):
    parser = sub.add_parser('distill', help='distil a student network from a teacher',
                            description='Train a student on MNIST with the teacher/student '
                            'SoftmaxOutput group (soft labels at temperature T weighted by the '
                            'mimic weight), either from a frozen teacher checkpoint or jointly '
                            'with the teacher, and save the student alone.',
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_kd_args(parser)
    parser.set_defaults(func=run)


def run(args):
    print_kd_result(args, run_kd(args))
