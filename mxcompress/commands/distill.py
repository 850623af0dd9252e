"""``mxcompress distill`` and ``train/train_kd.py``: train a student by distillation with
``mx.mod.Module`` (the teacher/student group of :func:`symbols.distill.get_symbol`).

Two modes:

* frozen teacher (default): the teacher is loaded from its checkpoint
  (``--teacher-prefix/--teacher-epoch``), put in inference mode and listed in
  ``fixed_param_names``; only the student learns.
* ``--joint``: teacher (``--teacher`` by name, or initialised from ``--teacher-prefix``) and
  student learn together; the teacher from its own hard-label head ``softmax_teacher``.

Metrics are read from ``softmax_hard_output`` (the student). At the end the student alone is
saved as a standard checkpoint ``--output-prefix``-0000 (input ``data``, first output
``softmax_output`` probabilities) and its test error is printed.
"""
import argparse
import logging

import mxnet as mx
from symbols import distill as sd

from ..argtypes import positive_int
from ..checkpoint import load_checkpoint, save_checkpoint
from ..distillation.losses import check_mimic_weight, check_temperature
from ..fit import (add_data_args, add_fit_args, data_split, input_shape, train_model,
                   validation_data)
from ..measure import classification_error
from . import check_outputs, checkpoint_files, script_main

__all__ = ['add_kd_args', 'build_kd', 'run_kd', 'kd_metric', 'print_kd_result', 'add_parser',
           'main']

def add_kd_args(parser):
    """Options of distillation: networks, teacher checkpoint, T, mimic weight, plus data/fit."""
    kd = parser.add_argument_group('Distillation')
    kd.add_argument('--student', default='kd-student',
                    help='student network (see `mxcompress networks`); its classifier is '
                         'replaced by a new one, fc_class_score')
    kd.add_argument('--teacher', default='kd-teacher',
                    help='teacher network by name (used with --joint when no --teacher-prefix '
                         'is given); "resnet" takes its depth from --resnet-layer-num')
    kd.add_argument('--resnet-layer-num', type=int, default=20,
                    help='depth (6n + 2) of the resnet teacher')
    kd.add_argument('--teacher-prefix', default=None,
                    help='trained teacher checkpoint PREFIX (PREFIX-symbol.json + '
                         'PREFIX-NNNN.params); required unless --joint')
    kd.add_argument('--teacher-epoch', type=int, default=0, help='epoch of --teacher-prefix')
    kd.add_argument('--joint', action='store_true',
                    help='train teacher and student together (the teacher gets its own '
                         'hard-label head); default: the teacher is frozen')
    kd.add_argument('--temperature', type=float, default=3.0,
                    help='distillation temperature T > 0 (3 is common; Hinton et al. used 20 '
                         'on MNIST)')
    kd.add_argument('--mimic-weight', type=float, default=1.0,
                    help='grad_scale (>= 0) of the soft-target head softmax_soft')
    kd.add_argument('--t2-scaling', action='store_true',
                    help="multiply the soft term's gradient by T^2 (Hinton et al.)")
    kd.add_argument('--num-classes', type=positive_int, default=10,
                    help='classes of student and teacher')
    kd.add_argument('--output-prefix', default=None,
                    help='save the trained student alone as PREFIX-symbol.json + '
                         'PREFIX-0000.params')
    kd.add_argument('--group-symbol', default=None,
                    help='also save the teacher/student group symbol here (e.g. '
                         'group2-symbol.json)')
    add_data_args(parser)
    add_fit_args(parser)
    return parser


def kd_metric(joint=False):
    """Accuracy and cross-entropy of the student (``softmax_hard_output``); teacher's if joint."""
    metric = mx.metric.CompositeEvalMetric()
    metric.add(mx.metric.Accuracy(output_names=['softmax_hard_output'],
                                  label_names=[sd.HARD_LABEL]))
    metric.add(mx.metric.CrossEntropy(output_names=['softmax_hard_output'],
                                      label_names=[sd.HARD_LABEL]))
    if joint:
        metric.add(mx.metric.Accuracy(name='teacher-accuracy',
                                      output_names=['softmax_teacher_output'],
                                      label_names=[sd.HARD_LABEL]))
    return metric


def build_kd(args):
    """Check the options and build the group; nothing is trained or written.

    Returns
    -------
    group : mx.sym.Symbol
    arg_params, aux_params : dict
        The teacher's (renamed) checkpoint params, or empty.
    fixed : list of str
        ``fixed_param_names`` (the teacher's params when frozen).

    Raises
    ------
    ValueError
        Bad temperature / mimic weight, no teacher checkpoint for a frozen teacher, teacher
        and student class counts differ.
    mxcompress.checkpoint.CheckpointError
        The teacher checkpoint is missing, corrupt, or its params don't fit its symbol.
    """
    temperature = check_temperature(args.temperature)
    weight = check_mimic_weight(args.mimic_weight)
    if args.num_classes < 1:
        raise ValueError('--num-classes must be >= 1, got %d' % args.num_classes)
    arg_params, aux_params = {}, {}
    shape = input_shape(args)
    if args.teacher_prefix:
        t_sym, t_args, t_aux = load_checkpoint(args.teacher_prefix, args.teacher_epoch,
                                               data_shapes={'data': shape})
        teacher = sd.checkpoint_teacher(t_sym)
        arg_params, aux_params = sd.prefix_params(t_args, 'teacher_'), sd.prefix_params(t_aux,
                                                                                      'teacher_')
    elif args.joint:
        teacher = sd.network_teacher(args.teacher)
    else:
        raise ValueError('a frozen teacher needs --teacher-prefix (a trained checkpoint); '
                         'or pass --joint to train teacher and student together')
    group = sd.get_symbol(mx.sym.Variable('data'), mx.sym.Variable(sd.HARD_LABEL),
                          args.resnet_layer_num, temperature, weight,
                          num_classes=args.num_classes, student=sd.network_student(args.student),
                          teacher=teacher, t2_scaling=args.t2_scaling, joint=args.joint,
                          save_path=args.group_symbol, data_shape=shape)
    fixed = [] if args.joint else sd.teacher_param_names(group)
    return group, arg_params, aux_params, fixed


def run_kd(args, logger=None, test=True):
    """Distil ``args.student`` from the teacher; save the student; return a result dict.

    Parameters
    ----------
    test : bool
        Measure the test error too; False leaves the test set unread (a run whose
        validation error is used for a choice, e.g. a temperature sweep).

    Returns
    -------
    dict
        ``student_val_error`` (with a ``--val-split``), ``student_test_error`` (and
        ``teacher_test_error``; only with ``test``), ``wall_seconds``, ``module``,
        ``student_symbol``, ``student_arg_params``, ``student_aux_params``.
    """
    logger = logger or logging.getLogger('mxcompress')
    teacher = checkpoint_files(args.teacher_prefix, args.teacher_epoch) \
        if args.teacher_prefix else ()
    check_outputs(args, prefixes=['output_prefix', 'model_prefix'], files=['group_symbol'],
                  inputs=teacher)
    group, arg_params, aux_params, fixed = build_kd(args)
    module, wall = train_model(args, group, label_name=sd.HARD_LABEL,
                               arg_params=arg_params or None, aux_params=aux_params or None,
                               fixed_param_names=fixed or None, eval_metric=kd_metric(args.joint),
                               logger=logger)
    trained_args, trained_aux = module.get_params()
    student = sd.student_deploy_symbol(group)
    s_args, s_aux = sd.subgraph_params(student, trained_args, trained_aux)
    if args.output_prefix:
        save_checkpoint(args.output_prefix, 0, student, s_args, s_aux)
        logger.info('saved the student to %s-symbol.json / -0000.params', args.output_prefix)
    result = {'wall_seconds': wall, 'module': module, 'student_symbol': student,
              'student_arg_params': s_args, 'student_aux_params': s_aux}
    validation = validation_data(args)
    if validation is not None:
        result['student_val_error'] = classification_error(student, s_args, s_aux, *validation)
    if not test:
        return result
    images, labels = data_split(args, 'test')
    result['student_test_error'] = classification_error(student, s_args, s_aux, images, labels)
    if args.joint:
        teacher = mx.sym.SoftmaxOutput(group.get_internals()['softmax_teacher_output']
                                       .get_children()[0], name='softmax')
        t_args, t_aux = sd.subgraph_params(teacher, trained_args, trained_aux)
        result['teacher_test_error'] = classification_error(teacher, t_args, t_aux, images,
                                                            labels)
    return result


def print_kd_result(args, result):
    """Print the student's (and, when trained jointly, the teacher's) test error."""
    print('student test error: %.2f%% (%s, T=%g, mimic weight %g)'
          % (100 * result['student_test_error'], args.student, args.temperature,
             args.mimic_weight))
    if 'student_val_error' in result:
        print('student validation error: %.2f%%' % (100 * result['student_val_error']))
    if 'teacher_test_error' in result:
        print('teacher test error: %.2f%%' % (100 * result['teacher_test_error']))


def add_parser(sub):
    parser = sub.add_parser('distill', help='distil a student network from a teacher',
                            description='Train a student on MNIST (or --data) with the teacher/student '
                            'SoftmaxOutput group (soft labels at temperature T weighted by the '
                            'mimic weight), either from a frozen teacher checkpoint or jointly '
                            'with the teacher, and save the student alone.',
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_kd_args(parser)
    parser.set_defaults(func=run)


def run(args):
    print_kd_result(args, run_kd(args))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Distil a student network from a teacher (the teacher/student '
                    'SoftmaxOutput group of symbols/distill.py, trained with mx.mod.Module).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_kd_args(parser)
    return script_main(parser, run, argv)
