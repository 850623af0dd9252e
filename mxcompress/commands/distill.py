"""``mxcompress distill``: train a student by knowledge distillation."""
import argparse

from ..kd_train import add_kd_args, run_kd


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
    result = run_kd(args)
    print('student test error: %.2f%% (%s, T=%g, mimic weight %g)'
          % (100 * result['student_test_error'], args.student, args.temperature,
             args.mimic_weight))
    if 'teacher_test_error' in result:
        print('teacher test error: %.2f%%' % (100 * result['teacher_test_error']))
