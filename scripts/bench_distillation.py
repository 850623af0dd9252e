#!/usr/bin/env python
"""Distillation benchmark: Hinton et al.'s MNIST experiment, a temperature sweep, light networks.

Stages (``--stages``, each writes its records into ``benchmarks/results/distillation.json``
as soon as it ends, so stages can run as separate processes):

``teacher``
    784-1200-1200-10 MLP, dropout (0.2 input, 0.5 hidden) and +-2 px jitter, cosine SGD
    -> ``benchmarks/models/kd-teacher``. Target: test error <= 0.80 % (paper: 67 errors).
    ``--teacher-from PREFIX EPOCH`` evaluates and adopts a teacher already trained with
    ``train/train_mnist.py`` (the command is recorded) instead of training one.
``student-alone``
    784-800-800-10, no regularisation (no dropout, no jitter, no weight decay)
    -> ``kd-student-alone`` (paper: 146 errors).
``distilled``
    The same student distilled from the frozen teacher at T = 20 with the teacher/student
    SoftmaxOutput group (T^2 scaling, jittered transfer set) -> ``kd-student-distilled``.
    Targets: error <= 0.80 % and >= 75 % of the student-alone/teacher gap closed.
``distilled-cnn``
    The same student distilled at T = 20 from the CNN teacher ``--cnn-teacher`` (LeNet-5)
    -> ``kd-student-distilled-from-lenet5``.
``sweep``
    T in {1, 2, 4, 8, 20} with fewer epochs (``--sweep-epochs``); plot
    ``benchmarks/results/distillation_temperature.png``.
``light``
    A CNN teacher (``--cnn-teacher``, a LeNet-5 checkpoint) and light students (shallow CNN,
    MobileNetV2 0.25, ShuffleNetV2) trained alone and distilled on ``--light-examples``
    training images for ``--light-epochs`` epochs -> params, MACs and test error.
``plot``
    Redraw the temperature plot from the recorded sweep (and the other runs' errors).
``light-timing``
    Latency at batch 1 and 64 of the teacher and every light student, interleaved in one
    process (``measure.time_inference``), under the timing lock.

Example::

    OMP_NUM_THREADS=1 python scripts/bench_distillation.py --stages teacher student-alone
    OMP_NUM_THREADS=1 python scripts/bench_distillation.py --stages distilled sweep
    OMP_NUM_THREADS=1 python scripts/bench_distillation.py --stages light-timing
"""
import argparse
import os
import sys

import symbols
from mxcompress import data as mnist_data
from mxcompress.analysis import count_macs, count_params, input_shape
from mxcompress.checkpoint import load_checkpoint, save_checkpoint
from mxcompress.commands.distill import add_kd_args, run_kd
from mxcompress.fit import fit_options, train_model
from mxcompress.logs import setup_logging
from mxcompress.measure import classification_error, machine_info, time_inference, timing_lock
from mxcompress.reporting.plots import pyplot, save_figure
from mxcompress.reporting.recipes import DISTILLATION
from mxcompress.reporting.results import read_results, update_results
from symbols import distill as sd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, 'benchmarks', 'models')
RESULTS = os.path.join(ROOT, 'benchmarks', 'results', 'distillation.json')
PLOT = os.path.join(ROOT, 'benchmarks', 'results', 'distillation_temperature.png')
STAGES = ('teacher', 'student-alone', 'distilled', 'distilled-cnn', 'sweep', 'light',
          'light-timing', 'plot')
TARGET_ERROR = DISTILLATION['target_error']
TARGET_GAP_CLOSED = DISTILLATION['target_gap_closed']
PAPER_ERRORS = DISTILLATION['paper_errors']
LIGHT_STUDENTS = DISTILLATION['light_students']
RECIPES = DISTILLATION['recipes']


def _record(records, opts):
    update_results(opts.output, records, machine=machine_info())


def _command(opts):
    return 'OMP_NUM_THREADS=%s python scripts/bench_distillation.py %s' % (
        os.environ.get('OMP_NUM_THREADS', ''), ' '.join(opts.argv))


def _test_set(opts):
    return mnist_data.load_mnist('test', opts.data_dir)


def _evaluate(symbol, arg_params, aux_params, opts):
    """Test error on the full 10,000 test images, params (incl. BN statistics) and MACs."""
    images, labels = _test_set(opts)
    error = classification_error(symbol, arg_params, aux_params, images, labels)
    return {'test_error': error, 'test_errors_of_10000': int(round(error * len(labels))),
            'params': count_params(arg_params) + count_params(aux_params),
            'macs': count_macs(symbol, input_shape(symbol, arg_params, aux_params))}


def train_alone(network, recipe, opts, num_examples=None, init=None, symbol=None,
                num_test_examples=None):
    """Train ``network`` (or ``symbol``) on its own with ``recipe``, starting from ``init``
    = (arg_params, aux_params) if given; returns (symbol, args, aux, seconds)."""
    args = fit_options(data_dir=opts.data_dir, num_examples=num_examples,
                       num_test_examples=num_test_examples, seed=opts.seed,
                       lr_schedule='cosine', disp_batches=200, **recipe)
    symbol = symbol if symbol is not None else symbols.get_symbol(network)
    module, wall = train_model(args, symbol, arg_params=init[0] if init else None,
                               aux_params=init[1] if init else None)
    arg_params, aux_params = module.get_params()
    return symbol, arg_params, aux_params, wall


def distil(student, teacher_prefix, temperature, recipe, opts, num_examples=None,
           output_prefix=None, teacher_epoch=0, num_test_examples=None, test=True):
    """Distil ``student`` from the frozen checkpoint ``teacher_prefix`` (T^2 scaling on);
    ``test=False`` leaves the test set unread (see :func:`run_kd`)."""
    args = fit_options(add_args=add_kd_args, lr_schedule='cosine', disp_batches=200,
                       data_dir=opts.data_dir, num_examples=num_examples,
                       num_test_examples=num_test_examples, seed=opts.seed, student=student,
                       teacher_prefix=teacher_prefix, teacher_epoch=teacher_epoch,
                       temperature=temperature, mimic_weight=opts.mimic_weight,
                       t2_scaling=True, output_prefix=output_prefix, **recipe)
    return run_kd(args, test=test)


def stage_teacher(opts):
    prefix = os.path.join(opts.models_dir, 'kd-teacher')
    recipe = dict(RECIPES['kd-teacher'])
    if opts.teacher_from:
        src, epoch = opts.teacher_from[0], int(opts.teacher_from[1])
        symbol, arg_params, aux_params = load_checkpoint(src, epoch)
        recipe['num_epochs'] = epoch
        how = {'trained_by': opts.teacher_command or 'train/train_mnist.py (command not given)'}
        wall = None
    else:
        init, how = None, {}
        if opts.teacher_init:
            _, init_args, init_aux = load_checkpoint(opts.teacher_init[0],
                                                     int(opts.teacher_init[1]))
            init = (init_args, init_aux)
            recipe.update(num_epochs=opts.teacher_epochs, lr=opts.teacher_lr)
            how = {'initialised_from': {'checkpoint': 'epoch %s of %s' % (
                opts.teacher_init[1], opts.teacher_init[0]), 'trained_by': opts.teacher_command},
                'total_epochs': int(opts.teacher_init[1]) + opts.teacher_epochs}
        symbol, arg_params, aux_params, wall = train_alone('kd-teacher', recipe, opts,
                                                           init=init)
    save_checkpoint(prefix, 0, symbol, arg_params, aux_params)
    record = _evaluate(symbol, arg_params, aux_params, opts)
    record.update(how, recipe=dict(recipe, dropout=0.5, input_dropout=0.2, optimizer='sgd',
                                   momentum=0.9, lr_schedule='cosine'),
                  wall_seconds=wall, model='benchmarks/models/kd-teacher',
                  target_error=TARGET_ERROR, target_met=record['test_error'] <= TARGET_ERROR,
                  paper_errors=PAPER_ERRORS['kd-teacher'], command=_command(opts))
    _record({'kd-teacher': record}, opts)
    return record


def stage_student_alone(opts):
    recipe = RECIPES['kd-student-alone']
    symbol, arg_params, aux_params, wall = train_alone('kd-student', recipe, opts)
    save_checkpoint(os.path.join(opts.models_dir, 'kd-student-alone'), 0, symbol, arg_params,
                    aux_params)
    record = _evaluate(symbol, arg_params, aux_params, opts)
    record.update(recipe=dict(recipe, regularisation='none', optimizer='sgd', momentum=0.9,
                              lr_schedule='cosine'),
                  wall_seconds=wall, model='benchmarks/models/kd-student-alone',
                  paper_errors=PAPER_ERRORS['kd-student-alone'], command=_command(opts))
    _record({'kd-student-alone': record}, opts)
    return record


def _stage_distilled(opts, name, teacher_prefix, teacher_key, teacher_label):
    recipe = dict(RECIPES['kd-student-distilled'])
    if opts.distilled_epochs:
        recipe['num_epochs'] = opts.distilled_epochs
    prefix = os.path.join(opts.models_dir, name)
    result = distil('kd-student', teacher_prefix, 20.0, recipe, opts, output_prefix=prefix)
    record = _evaluate(result['student_symbol'], result['student_arg_params'],
                       result['student_aux_params'], opts)
    done = read_results(opts.output)
    teacher = done.get(teacher_key, {}).get('test_error')
    alone = done.get('kd-student-alone', {}).get('test_error')
    gap = None
    if teacher is not None and alone is not None and alone > teacher:
        gap = (alone - record['test_error']) / (alone - teacher)
    record.update(recipe=dict(recipe, temperature=20.0, mimic_weight=opts.mimic_weight,
                              t2_scaling=True, hard_label_weight=1.0,
                              teacher='frozen ' + teacher_label, teacher_test_error=teacher,
                              transfer_set='the 60,000 training images with +-2 px jitter, '
                                           'labels used too (softmax_hard)',
                              optimizer='sgd', momentum=0.9, lr_schedule='cosine'),
                  wall_seconds=result['wall_seconds'], model='benchmarks/models/' + name,
                  target_error=TARGET_ERROR, gap_closed=gap,
                  target_gap_closed=TARGET_GAP_CLOSED,
                  target_met=bool(record['test_error'] <= TARGET_ERROR and gap is not None
                                  and gap >= TARGET_GAP_CLOSED),
                  paper_errors=PAPER_ERRORS['kd-student-distilled'], command=_command(opts))
    _record({name: record}, opts)
    return record


def stage_distilled(opts):
    return _stage_distilled(opts, 'kd-student-distilled',
                            os.path.join(opts.models_dir, 'kd-teacher'), 'kd-teacher',
                            'kd-teacher (784-1200-1200-10 MLP)')


def stage_distilled_cnn(opts):
    """The same student distilled from the CNN teacher (``--cnn-teacher``, LeNet-5)."""
    key = 'cnn-teacher-' + os.path.basename(opts.cnn_teacher)
    if key not in read_results(opts.output):
        symbol, arg_params, aux_params = load_checkpoint(opts.cnn_teacher, 0)
        _record({key: dict(_evaluate(symbol, arg_params, aux_params, opts),
                           model=os.path.relpath(opts.cnn_teacher, ROOT))}, opts)
    return _stage_distilled(opts, 'kd-student-distilled-from-%s'
                            % os.path.basename(opts.cnn_teacher), opts.cnn_teacher, key,
                            os.path.basename(opts.cnn_teacher) + ' CNN')


def stage_sweep(opts):
    """Distil the student at each ``--temperatures`` (short runs) and choose T on validation.

    Every run holds out the validation split (``--val-split``, default 10 % of the training
    images) and its validation error picks the temperature; the test set is read once, for
    the chosen temperature's student.
    """
    recipe = dict(RECIPES['kd-student-distilled'], num_epochs=opts.sweep_epochs)
    points, best = [], None
    for temperature in opts.temperatures:
        result = distil('kd-student', os.path.join(opts.models_dir, 'kd-teacher'), temperature,
                        recipe, opts, num_examples=opts.sweep_examples, test=False)
        points.append({'temperature': temperature, 'val_error': result['student_val_error'],
                       'wall_seconds': result['wall_seconds']})
        print('sweep T=%g: validation error %.2f%%'
              % (temperature, 100 * points[-1]['val_error']), flush=True)
        if best is None or result['student_val_error'] < best[1]['student_val_error']:
            best = (temperature, result)
    temperature, result = best
    test_error = _evaluate(result['student_symbol'], result['student_arg_params'],
                           result['student_aux_params'], opts)['test_error']
    print('chosen on validation: T=%g, test error %.2f%%' % (temperature, 100 * test_error),
          flush=True)
    record = {'points': points, 'plot': os.path.relpath(opts.plot, ROOT),
              'chosen_temperature': temperature, 'chosen_test_error': test_error,
              'choices_made_on': 'temperature chosen on the validation split: 6,000 of the '
                                 '60,000 training images held out (--val-split 0.1, '
                                 'stratified, seed 0)',
              'reported_on': 'the test set, read once, for the chosen temperature only',
              'recipe': dict(recipe, mimic_weight=opts.mimic_weight, t2_scaling=True,
                             num_examples=opts.sweep_examples or 60000, val_split=0.1,
                             note='fewer epochs than kd-student-distilled; 10 % of '
                                  'num_examples held out for validation'),
              'command': _command(opts)}
    _record({'temperature_sweep': record}, opts)
    plot_sweep(points, opts)
    return record


def plot_sweep(points, opts):
    """Validation error of the sweep's students against T, the chosen T's test error marked."""
    plt = pyplot()
    done = read_results(opts.output)
    sweep = done.get('temperature_sweep', {})
    fig, ax = plt.subplots(figsize=(6, 5.2))
    temps = [p['temperature'] for p in points]
    recipe = sweep.get('recipe', {})
    examples = recipe.get('num_examples', 60000)
    held = int(round(recipe.get('val_split', 0) * examples))
    ax.plot(temps, [100 * p['val_error'] for p in points], 'o-',
            label='validation error (%d held-out images), distilled 800-800, %s epochs on the '
            'other %d' % (held, recipe.get('num_epochs', opts.sweep_epochs), examples - held))
    if 'chosen_temperature' in sweep:
        ax.plot([sweep['chosen_temperature']], [100 * sweep['chosen_test_error']], 'k*',
                markersize=12, label='chosen on validation: T=%g, its test error'
                % sweep['chosen_temperature'])
    ax.set_xscale('log', base=2)
    ax.set_xticks(temps)
    ax.set_xticklabels([('%g' % t) for t in temps])
    ax.set_xlabel('temperature T')
    ax.set_ylabel('MNIST error (%)')
    ax.set_title('Distillation temperature sweep (choice on the validation split)', fontsize=9)
    ax.legend(fontsize=8, loc='upper center', bbox_to_anchor=(0.5, -0.16), ncol=1)
    fig.tight_layout()
    save_figure(fig, opts.plot, dpi=100)


def stage_plot(opts):
    """Redraw the temperature plot from the recorded sweep."""
    points = read_results(opts.output)['temperature_sweep']['points']
    plot_sweep(points, opts)
    return {'plot': os.path.relpath(opts.plot, ROOT)}


def _light_models(opts):
    models = {'teacher-' + os.path.basename(opts.cnn_teacher): (opts.cnn_teacher, 0)}
    for name in sorted(os.listdir(opts.models_dir)):
        if name.startswith('kd-light-') and name.endswith('-symbol.json'):
            name = name[:-len('-symbol.json')]
            models[name] = (os.path.join(opts.models_dir, name), 0)
    return models


def stage_light(opts):
    recipe = dict(RECIPES['light'], num_epochs=opts.light_epochs)
    table_recipe = dict(recipe, num_examples=opts.light_examples, t2_scaling=True,
                        optimizer='sgd', momentum=0.9, lr_schedule='cosine')
    previous = read_results(opts.output).get('light_networks', {})
    # rows of an earlier run are kept only when it used the same recipe (one table, one recipe)
    rows = previous.get('rows', {}) if previous.get('recipe') == table_recipe else {}
    t_sym, t_args, t_aux = load_checkpoint(opts.cnn_teacher, 0)
    rows['teacher-' + os.path.basename(opts.cnn_teacher)] = dict(
        _evaluate(t_sym, t_args, t_aux, opts), role='teacher', training='checkpoint %s'
        % os.path.relpath(opts.cnn_teacher, ROOT))
    for student in opts.light_students:
        if 'alone' in opts.light_modes:
            prefix = os.path.join(opts.models_dir, 'kd-light-%s-alone' % student)
            same_head = sd.student_symbol(sd.network_student(student))  # as inside the group
            symbol, arg_params, aux_params, wall = train_alone(
                student, recipe, opts, num_examples=opts.light_examples, symbol=same_head,
                num_test_examples=1000)
            save_checkpoint(prefix, 0, symbol, arg_params, aux_params)
            rows[os.path.basename(prefix)] = dict(
                _evaluate(symbol, arg_params, aux_params, opts), role='student',
                training='alone', wall_seconds=wall)
            print('%s alone: %.2f%%' % (student, 100 * rows[os.path.basename(prefix)]
                                        ['test_error']), flush=True)
        if 'distilled' in opts.light_modes:
            prefix = os.path.join(opts.models_dir, 'kd-light-%s-distilled%s'
                                  % (student, opts.light_tag))
            result = distil(student, opts.cnn_teacher, opts.light_temperature, recipe, opts,
                            num_examples=opts.light_examples, output_prefix=prefix,
                            num_test_examples=1000)
            rows[os.path.basename(prefix)] = dict(
                _evaluate(result['student_symbol'], result['student_arg_params'],
                          result['student_aux_params'], opts), role='student',
                training='distilled T=%g, mimic weight %g x T^2'
                % (opts.light_temperature, opts.mimic_weight),
                temperature=opts.light_temperature, mimic_weight=opts.mimic_weight,
                wall_seconds=result['wall_seconds'])
            print('%s distilled: %.2f%%' % (student, 100 * rows[os.path.basename(prefix)]
                                            ['test_error']), flush=True)
        _record({'light_networks': {'rows': rows, 'recipe': table_recipe,
                                    'command': _command(opts)}}, opts)
    return rows


def stage_light_timing(opts):
    models = {name: load_checkpoint(prefix, epoch)
              for name, (prefix, epoch) in _light_models(opts).items()
              if os.path.exists(prefix + '-symbol.json')}
    timing = {}
    with timing_lock():
        load_before = os.getloadavg()
        for batch in (1, 64):
            timing['batch_%d' % batch] = time_inference(models, batch, repeats=opts.repeats)
    _record({'light_timing': {'latency': timing, 'repeats': opts.repeats,
                              'note': 'interleaved medians in one process, OMP_NUM_THREADS=%s'
                                      % os.environ.get('OMP_NUM_THREADS', 'unset'),
                              'load_average_before': load_before,
                              'command': _command(opts)}}, opts)
    return timing


STAGE_FUNCTIONS = {'teacher': stage_teacher, 'student-alone': stage_student_alone,
                   'distilled': stage_distilled, 'distilled-cnn': stage_distilled_cnn,
                   'sweep': stage_sweep, 'light': stage_light,
                   'light-timing': stage_light_timing, 'plot': stage_plot}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--stages', nargs='+', choices=STAGES, default=list(STAGES))
    parser.add_argument('--data-dir', default=None, help='MNIST directory (default: search)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--mimic-weight', type=float, default=1.0,
                        help='weight of the soft term (grad_scale, times T^2)')
    parser.add_argument('--teacher-from', nargs=2, metavar=('PREFIX', 'EPOCH'),
                        help='adopt a teacher trained by train/train_mnist.py')
    parser.add_argument('--teacher-init', nargs=2, metavar=('PREFIX', 'EPOCH'),
                        help='start the teacher from this checkpoint (a run cut short) and '
                             'train it --teacher-epochs more with a fresh cosine schedule')
    parser.add_argument('--teacher-epochs', type=int, default=20)
    parser.add_argument('--teacher-lr', type=float, default=0.05)
    parser.add_argument('--teacher-command', default=None,
                        help='the command that trained --teacher-from / --teacher-init '
                             '(recorded)')
    parser.add_argument('--distilled-epochs', type=int, default=None,
                        help='override the epochs of the distilled / distilled-cnn recipe')
    parser.add_argument('--temperatures', type=float, nargs='+', default=[1, 2, 4, 8, 20])
    parser.add_argument('--sweep-epochs', type=int, default=3)
    parser.add_argument('--sweep-examples', type=int, default=None,
                        help='train the sweep on the first N training images (default all)')
    parser.add_argument('--cnn-teacher', default=os.path.join(MODELS, 'lenet5'),
                        help='CNN teacher checkpoint prefix (epoch 0) for the light networks')
    parser.add_argument('--light-students', nargs='+', default=list(LIGHT_STUDENTS),
                        choices=LIGHT_STUDENTS)
    parser.add_argument('--light-examples', type=int, default=60000)
    parser.add_argument('--light-epochs', type=int, default=3)
    parser.add_argument('--light-temperature', type=float, default=4.0)
    parser.add_argument('--light-modes', nargs='+', choices=('alone', 'distilled'),
                        default=['alone', 'distilled'])
    parser.add_argument('--light-tag', default='',
                        help='suffix of the distilled light models (keeps earlier runs)')
    parser.add_argument('--repeats', type=int, default=30, help='timed runs per model')
    parser.add_argument('--models-dir', default=MODELS)
    parser.add_argument('--output', default=RESULTS)
    parser.add_argument('--plot', default=PLOT)
    opts = parser.parse_args(argv)
    opts.argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging()
    for stage in opts.stages:
        result = STAGE_FUNCTIONS[stage](opts)
        print('%s done: %s' % (stage, {k: v for k, v in result.items()
                                       if not isinstance(v, (dict, list))}), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
