"""The one training loop: ``mx.mod.Module.fit`` with arguments, schedules and checkpoints.

Every method of the toolkit (training from scratch, pruning fine-tune, codebook fine-tune,
distillation, binary training) runs through :func:`fit`. ``add_fit_args`` adds the shared
command-line options; scripts only ``set_defaults`` and call :func:`fit`.
"""
import argparse
import copy
import logging
import os
import random
import time

import mxnet as mx
import numpy as np

from .argtypes import (chw_shape, epoch_list, split_size, float_in, int_in, non_negative_float, non_negative_int,
                       positive_float, positive_int)
from .checkpoint import load_checkpoint, read_manifest, save_checkpoint, states_path
from .data import holdout_split, iterators
from .distributed import create_dist_kvstore, is_dist, rank0_only
from .sources import FORMATS, load_data

__all__ = ['add_fit_args', 'add_data_args', 'fit_options', 'seed_everything', 'create_kvstore',
           'data_split', 'input_shape', 'train_and_validation', 'validation_data',
           'train_iterators', 'data_provenance', 'SPLIT_SEED', 'fit', 'train_model',
           'make_lr_scheduler', 'checkpoint_callback', 'default_metric', 'epoch_seed',
           'finite_guard', 'finite_epoch_guard', 'TrainingDiverged', 'OPTIMIZERS']

OPTIMIZERS = ('sgd', 'nag', 'adam', 'rmsprop')
#: the largest --jitter (pixels)
MAX_JITTER = 8
LR_SCHEDULES = ('step', 'cosine', 'none')
KV_STORES = ('local', 'device', 'dist_sync', 'dist_async', 'dist_device_sync')


def add_data_args(parser):
    """Add the data options (``--data``, ``--data-format``, ``--num-examples``, ...)."""
    data = parser.add_argument_group('Data')
    data.add_argument('--data', '--data-dir', dest='data_dir', default=None, metavar='PATH',
                      help='the data set: a directory of IDX files (raw or .gz; MNIST by '
                           'default: $MXCOMPRESS_DATA, then ~/.mxnet/datasets/mnist), a '
                           'directory with train.rec/test.rec (RecordIO), a directory with '
                           'train/ and test/ class folders of images, or an .npz file')
    data.add_argument('--data-format', choices=FORMATS, default=None,
                      help='format of --data (default: detected from the path)')
    data.add_argument('--data-shape', type=chw_shape, default=None, metavar='C,H,W',
                      help='convert every image to this shape (resize, grayscale <-> RGB); '
                           'default: as stored')
    data.add_argument('--num-examples', type=positive_int, default=None,
                      help='train on the first N training images only (quick runs)')
    data.add_argument('--val-split', type=split_size, default=0.1, metavar='N|FRACTION',
                      help='hold out this many training images (or this fraction) as the '
                           'validation set, stratified by class and seeded: each epoch is '
                           'validated on it and every choice is made on it; the test set is '
                           'read once, at the end (0: none, validate on the test set)')
    data.add_argument('--num-test-examples', type=positive_int, default=None,
                      help='evaluate on the first N test images only')
    data.add_argument('--jitter', type=int_in(0, MAX_JITTER), default=0,
                      help='shift training images by up to this many pixels each epoch (0..%d)'
                           % MAX_JITTER)
    return data


def add_fit_args(parser):
    """Add the training options shared by every train script and CLI command.

    Groups: *Training* (epochs, batch, optimizer, learning rate schedule, seed) and
    *Checkpoints* (prefix, resume epoch, kvstore).
    """
    train = parser.add_argument_group('Training')
    train.add_argument('--num-epochs', type=positive_int, default=10, help='epochs to train '
                       '(total, counting those before --load-epoch)')
    train.add_argument('--batch-size', type=positive_int, default=64, help='batch size')
    train.add_argument('--optimizer', choices=OPTIMIZERS, default='sgd', help='optimizer')
    train.add_argument('--lr', type=positive_float, default=0.02, help='initial learning rate')
    train.add_argument('--lr-schedule', choices=LR_SCHEDULES, default='step',
                       help='step: multiply by --lr-factor at --lr-step-epochs; cosine: cosine '
                            'decay to 0 over --num-epochs; none: constant')
    train.add_argument('--lr-factor', type=float_in(0, 1), default=0.1,
                       help='step schedule factor')
    train.add_argument('--lr-step-epochs', type=epoch_list, default='',
                       help='comma-separated epochs where the step schedule multiplies the rate '
                            'by --lr-factor, e.g. 10,15')
    train.add_argument('--mom', type=float_in(0, 1, high_open=True), default=0.9,
                       help='momentum (sgd, nag), in [0, 1)')
    train.add_argument('--wd', type=non_negative_float, default=1e-4, help='weight decay')
    train.add_argument('--initializer', choices=('xavier', 'msra', 'uniform'), default='xavier',
                       help='weight initialisation for parameters not loaded from a checkpoint')
    train.add_argument('--seed', type=int, default=0, help='seed of every random generator '
                       '(data order, initialisation, dropout), so a run is repeatable')
    train.add_argument('--disp-batches', type=positive_int, default=100,
                       help='print speed and metrics every N batches')
    ckpt = parser.add_argument_group('Checkpoints and distribution')
    ckpt.add_argument('--model-prefix', default=None, help='save PREFIX-symbol.json and '
                      'PREFIX-NNNN.params after every epoch (atomically)')
    ckpt.add_argument('--load-epoch', type=non_negative_int, default=None,
                      help='resume from PREFIX-NNNN.params of --model-prefix at this epoch')
    ckpt.add_argument('--kv-store', choices=KV_STORES, default='local',
                      help="kvstore; dist_* use MXNet's parameter server "
                           '(launch with scripts/launch_local.sh or tools/launch.py)')
    return train


def fit_options(base=None, add_args=None, **overrides):
    """The options of one :func:`fit` call: a copy of ``base`` with ``overrides`` set.

    Every stage that trains with other epochs, rates or checkpointing than the command it
    runs in (a fine-tuning round, a benchmark recipe) takes its options from here, so the
    caller's own ``args`` are never changed.

    Parameters
    ----------
    base : argparse.Namespace or None
        Options to copy; None takes the defaults of the options ``add_args`` adds.
    add_args : callable or None
        ``add_args(parser)`` used when ``base`` is None; default :func:`add_data_args` and
        :func:`add_fit_args` (e.g. pass a command's own ``add_kd_args``).
    **overrides
        Option values to set, by ``dest`` name (``num_epochs=2``, ``model_prefix=None``).

    Raises
    ------
    ValueError
        An override that is not one of the options (a misspelt name would silently do nothing).
    """
    if base is None:
        parser = argparse.ArgumentParser(conflict_handler='resolve')
        if add_args is None:
            add_data_args(parser)
            add_fit_args(parser)
        else:
            add_args(parser)
        base = parser.parse_args([])
    options = copy.copy(base)
    for name, value in overrides.items():
        if not hasattr(options, name):
            raise ValueError('fit_options: %r is not an option (known: %s)'
                             % (name, ', '.join(sorted(vars(options)))))
        setattr(options, name, value)
    return options


def seed_everything(seed):
    """Seed Python's, numpy's and MXNet's generators."""
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


#: distributed kvstores already joined by this process (a process joins its group once)
_DIST_KVSTORES = {}


def create_kvstore(kv_store):
    """Create the kvstore and return ``(kv, num_parts, part_index)`` for sharding data.

    A distributed kvstore (``dist_*``) is created once per process and reused: a worker joins
    its parameter-server group once, however many fine-tuning stages a pipeline runs.
    """
    if 'dist' in kv_store:
        kv = _DIST_KVSTORES.get(kv_store)
        if kv is None:
            kv = _DIST_KVSTORES[kv_store] = create_dist_kvstore(kv_store)
        return kv, kv.num_workers, kv.rank
    return mx.kvstore.create(kv_store), 1, 0


def data_split(args, split, num_examples=None):
    """One split of the data set of ``args``'s data options, float32 images in [0, 1]."""
    if num_examples is None:
        num_examples = args.num_examples if split == 'train' else args.num_test_examples
    return load_data(split, getattr(args, 'data_dir', None), num_examples,
                     getattr(args, 'data_format', None), getattr(args, 'data_shape', None))


def input_shape(args):
    """``(1, C, H, W)``: the shape of one example of the data set of ``args``."""
    return (1,) + tuple(data_split(args, 'test', num_examples=1)[0].shape[1:])


#: seed of the validation split: the same images are held out whatever --seed is
SPLIT_SEED = 0


def train_and_validation(args):
    """``((train images, labels), (validation images, labels) or None)`` of ``args``: the
    training set of the data options less the ``--val-split`` held out of it."""
    images, labels = data_split(args, 'train')
    size = getattr(args, 'val_split', 0) or 0
    if not size:
        return (images, labels), None
    train_index, val_index = holdout_split(labels, size, SPLIT_SEED)
    return (images[train_index], labels[train_index]), (images[val_index], labels[val_index])


def validation_data(args):
    """The validation split of ``args`` (images, labels), or None with ``--val-split 0``."""
    return train_and_validation(args)[1]


def data_provenance(args, choices=None):
    """Which images each figure of a run came from, for its results record.

    Parameters
    ----------
    args : argparse.Namespace
        The data options of the run (``--val-split``, ``--data``).
    choices : str or None
        What was chosen on the validation split (e.g. ``'ranks and fine-tune settings'``);
        None when the run made no choice (a fixed recipe, the last epoch kept).

    Returns
    -------
    dict
        ``selection`` (``'validation'``, ``'test'`` or ``'none'``), ``choices_made_on`` (what
        was chosen on which images: the validation split, how many images and how it was
        drawn) and ``reported_on`` (the test set, read once at the end).
    """
    size = getattr(args, 'val_split', 0) or 0
    if size:
        train_labels = data_split(args, 'train')[1]
        held = len(holdout_split(train_labels, size, SPLIT_SEED)[1])
        split = ('validation split: %d of the %d training images held out (--val-split %s, '
                 'stratified, seed %d); the model never trained on them'
                 % (held, len(train_labels), size, SPLIT_SEED))
    else:
        split = None
    if choices is None:
        made, selection = 'no choice made (fixed recipe, last epoch kept)', 'none'
    elif split is None:
        made, selection = '%s chosen on the test set (--val-split 0)' % choices, 'test'
    else:
        made, selection = '%s chosen on the %s' % (choices, split), 'validation'
    return {'selection': selection, 'choices_made_on': made,
            'reported_on': 'the test set, read once after every choice was made'}


def train_iterators(args, label_name='softmax_label', flatten=False):
    """Data iterators from the data options of ``args``, sharded per worker when distributed.

    Parameters
    ----------
    args : argparse.Namespace
        With the options of :func:`add_data_args`, ``batch_size``, ``seed`` and ``kv_store``.

    Returns
    -------
    kv, train_iter, val_iter
        The kvstore (pass it to :func:`fit`) and this worker's iterators: the training set
        less the validation split, and the validation split (the test set with
        ``--val-split 0``). Every worker holds out the same split before sharding.
    """
    kv, num_parts, part_index = create_kvstore(getattr(args, 'kv_store', 'local'))
    train, val = train_and_validation(args)
    train_iter, val_iter = iterators(
        train, val if val is not None else data_split(args, 'test'), args.batch_size,
        label_name=label_name, flatten=flatten, jitter=getattr(args, 'jitter', 0),
        seed=args.seed, num_parts=num_parts, part_index=part_index)
    return kv, train_iter, val_iter


def make_lr_scheduler(args, epoch_size):
    """The learning-rate scheduler of ``args``, in optimizer updates, or None for a constant rate.

    Steps are absolute update counts, so a run resumed at epoch ``e`` (whose optimizer starts
    at ``begin_num_update = e * epoch_size``, see :func:`fit`) continues the same schedule.

    Parameters
    ----------
    epoch_size : int
        Optimizer updates per epoch (batches per epoch on this worker).
    """
    epoch_size = max(1, int(epoch_size))
    if args.lr_schedule == 'none':
        return None
    if args.lr_schedule == 'cosine':
        return mx.lr_scheduler.CosineScheduler(max_update=epoch_size * args.num_epochs,
                                               base_lr=args.lr, final_lr=0.0)
    try:
        steps = [int(s) for s in str(args.lr_step_epochs).split(',') if s.strip()]
    except ValueError:
        steps = [0]
    if not steps:
        return None
    if sorted(steps) != steps or steps[0] < 1:
        raise ValueError('--lr-step-epochs must be increasing positive epochs, got %r'
                         % args.lr_step_epochs)
    return mx.lr_scheduler.MultiFactorScheduler(step=[epoch_size * s for s in steps],
                                                factor=args.lr_factor, base_lr=args.lr)


def epoch_seed(seed, epoch):
    """Seed of MXNet's generator for ``epoch`` of a run seeded with ``seed``.

    Reseeding at every epoch start makes epoch ``e`` draw the same random numbers (dropout,
    stochastic binarisation) whether the run started at epoch 0 or was resumed at ``e``.
    """
    return (int(seed) * 1000003 + int(epoch)) % (2 ** 31)


def checkpoint_callback(prefix, symbol=None, module=None, seed=0, epoch_size=None):
    """Epoch-end callback saving checkpoint ``PREFIX`` at ``epoch + 1`` as one unit.

    ``symbol`` overrides the symbol saved (e.g. a deployment graph); by default the training
    symbol is saved. With ``module``, its optimizer state is saved too
    (``PREFIX-NNNN.states``) and the manifest records where training resumes (epoch, update
    count, seed), so ``--load-epoch`` continues the run exactly.
    """
    def _callback(epoch, sym, arg_params, aux_params):
        resume = None
        if module is not None:
            resume = {'epoch': epoch + 1, 'seed': int(seed),
                      'num_update': None if epoch_size is None else (epoch + 1) * epoch_size}
        save_checkpoint(prefix, epoch + 1, symbol if symbol is not None else sym,
                        arg_params, aux_params,
                        optimizer_states=None if module is None else module.save_optimizer_states,
                        resume=resume)
    return _callback


class TrainingDiverged(RuntimeError):
    """The loss or the outputs became NaN or infinite: training stopped, nothing was saved."""


def _nonfinite_params(module):
    arg_params, aux_params = module.get_params()
    return sorted(name for name, value in dict(arg_params, **aux_params).items()
                  if not np.isfinite(value.asnumpy()).all())


def finite_guard(module, lr):
    """Batch-end callback stopping the fit at the first non-finite metric or output.

    Raises :class:`TrainingDiverged` naming the epoch, the batch, the metric and the layers
    whose weights are no longer finite (PyTorch Lightning's and Keras's terminate-on-NaN).
    """
    def _callback(param):
        values = dict(zip(*param.eval_metric.get())) if param.eval_metric is not None else {}
        bad = {k: v for k, v in values.items() if not np.isfinite(v)}
        outputs = module.get_outputs()
        if not bad and outputs and np.isfinite(outputs[0].asnumpy()).all():
            return
        what = ', '.join('%s = %s' % kv for kv in sorted(bad.items())) or 'non-finite outputs'
        weights = _nonfinite_params(module)
        raise TrainingDiverged(
            'training diverged at epoch %d, batch %d: %s%s; stopped, nothing saved for this '
            'epoch. Lower --lr (it is %g) or check the data.'
            % (param.epoch, param.nbatch, what,
               ' (non-finite weights: %s)' % ', '.join(weights[:8]) if weights else '', lr))
    return _callback


def finite_epoch_guard(lr):
    """Epoch-end callback (before any checkpoint) stopping the fit when the last updates of the
    epoch made a weight non-finite: the batch-end guard sees only outputs computed before
    them."""
    def _callback(epoch, symbol, arg_params, aux_params):
        weights = sorted(name for name, value in dict(arg_params, **aux_params).items()
                         if not np.isfinite(value.asnumpy()).all())
        if weights:
            raise TrainingDiverged(
                'training diverged at the end of epoch %d: non-finite weights: %s; stopped, '
                'nothing saved for this epoch. Lower --lr (it is %g) or check the data.'
                % (epoch, ', '.join(weights[:8]), lr))
    return _callback


class _ResumableModule(mx.mod.Module):
    """``mx.mod.Module`` that, right after ``fit`` creates the optimizer, restores the saved
    optimizer state of a resumed run and seeds MXNet's generator for the first epoch."""

    def __init__(self, *args, states_file=None, first_epoch_seed=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._states_file, self._first_epoch_seed = states_file, first_epoch_seed

    def init_optimizer(self, *args, **kwargs):
        super().init_optimizer(*args, **kwargs)
        if self._states_file:
            self.load_optimizer_states(self._states_file)
        if self._first_epoch_seed is not None:
            mx.random.seed(self._first_epoch_seed)


def _reseed_callback(seed):
    def _callback(epoch, *_):
        mx.random.seed(epoch_seed(seed, epoch + 1))
    return _callback


def _resume_states(prefix, epoch, logger):
    """The optimizer-state file to resume from, or None (with a warning) when there is none."""
    manifest = read_manifest(prefix, epoch)
    path = states_path(prefix, epoch)
    if manifest is not None and os.path.basename(path) in manifest['files']:
        return path
    logger.warning('%s: no optimizer state saved with epoch %d: the resumed run restarts '
                   'momentum / Adam moments (not an exact continuation)', prefix, epoch)
    return None


def _initializer(name):
    if name == 'msra':
        return mx.init.MSRAPrelu(factor_type='in', slope=0.0)
    if name == 'uniform':
        return mx.init.Uniform(0.07)
    return mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)


def default_metric(output_name='softmax_output', label_name='softmax_label'):
    """Accuracy and cross-entropy on one named output."""
    metric = mx.metric.CompositeEvalMetric()
    metric.add(mx.metric.Accuracy(output_names=[output_name], label_names=[label_name]))
    metric.add(mx.metric.CrossEntropy(output_names=[output_name], label_names=[label_name]))
    return metric


def fit(args, symbol, train_iter, val_iter=None, arg_params=None, aux_params=None,
        fixed_param_names=None, eval_metric=None, batch_end_callback=None,
        epoch_end_callback=None, optimizer_params=None, kv=None, logger=None,
        allow_missing=True):
    """Train ``symbol`` with ``mx.mod.Module.fit``.

    Parameters
    ----------
    args : argparse.Namespace
        Options from :func:`add_fit_args`.
    symbol : mx.sym.Symbol
        Training graph (its loss outputs, e.g. ``SoftmaxOutput``).
    train_iter, val_iter : mx.io.DataIter
    arg_params, aux_params : dict or None
        Starting params (e.g. a checkpoint being compressed); missing ones are initialised.
    fixed_param_names : list of str or None
        Params the optimizer never updates (masks, codebook indices, a frozen teacher).
    eval_metric : mx.metric.EvalMetric or None
        Default: accuracy and cross-entropy on ``softmax_output``.
    batch_end_callback, epoch_end_callback : callable or list of callables
        Added after the Speedometer and the checkpoint callback.
    optimizer_params : dict or None
        Extra optimizer settings (override those from ``args``).
    kv : mx.kvstore.KVStore or None
        Default: created from ``args.kv_store``.

    Returns
    -------
    mx.mod.Module
        The trained module; ``module.get_params()`` gives the final params.
    """
    logger = logger or logging.getLogger('mxcompress')
    seed_everything(args.seed)
    if kv is None:
        kv = create_kvstore(args.kv_store)[0]
    begin_epoch, states_file = 0, None
    if args.load_epoch is not None:
        if not args.model_prefix:
            raise ValueError('--load-epoch needs --model-prefix')
        _, arg_params, aux_params = load_checkpoint(args.model_prefix, args.load_epoch)
        begin_epoch = args.load_epoch
        states_file = _resume_states(args.model_prefix, args.load_epoch, logger)
        logger.info('resumed from %s at epoch %d', args.model_prefix, begin_epoch)
    if begin_epoch >= args.num_epochs:
        raise ValueError('--num-epochs (%d) must exceed the resumed epoch (%d)'
                         % (args.num_epochs, begin_epoch))

    num_examples = getattr(train_iter, 'num_data', None) or args.num_examples or 60000
    if num_examples < args.batch_size:
        raise ValueError('--batch-size %d is larger than the %d training examples'
                         % (args.batch_size, num_examples))
    epoch_size = num_examples // args.batch_size
    opt = {'learning_rate': args.lr, 'wd': args.wd, 'rescale_grad': 1.0 / args.batch_size}
    if 'dist' in kv.type:
        opt['rescale_grad'] = 1.0 / (args.batch_size * kv.num_workers)
    if args.optimizer in ('sgd', 'nag'):
        opt['momentum'] = args.mom
    scheduler = make_lr_scheduler(args, epoch_size)
    if scheduler is not None:
        opt['lr_scheduler'] = scheduler
    opt['begin_num_update'] = begin_epoch * epoch_size  # a resumed run continues its schedule
    opt.update(optimizer_params or {})
    if begin_epoch and hasattr(train_iter, 'set_epoch'):
        train_iter.set_epoch(begin_epoch)   # the data order of the epoch it resumes at

    label_names = [d.name for d in train_iter.provide_label]
    module = _ResumableModule(symbol, data_names=[d.name for d in train_iter.provide_data],
                              label_names=label_names, context=mx.cpu(), logger=logger,
                              fixed_param_names=fixed_param_names, states_file=states_file,
                              first_epoch_seed=epoch_seed(args.seed, begin_epoch))
    batch_cbs = [finite_guard(module, args.lr),
                 mx.callback.Speedometer(args.batch_size, args.disp_batches)]
    epoch_cbs = [finite_epoch_guard(args.lr)]
    if args.model_prefix:  # under a dist kvstore rank 0 writes, the others wait at a barrier
        epoch_cbs.append(rank0_only(kv, checkpoint_callback(
            args.model_prefix, module=None if is_dist(kv) else module, seed=args.seed,
            epoch_size=epoch_size)))
    for extra, target in ((batch_end_callback, batch_cbs), (epoch_end_callback, epoch_cbs)):
        if extra:
            target.extend(extra if isinstance(extra, (list, tuple)) else [extra])
    epoch_cbs.append(_reseed_callback(args.seed))
    module.fit(train_iter, eval_data=val_iter,
               eval_metric=eval_metric or default_metric(label_name=label_names[0]),
               kvstore=kv, optimizer=args.optimizer, optimizer_params=opt,
               initializer=_initializer(args.initializer), arg_params=arg_params,
               aux_params=aux_params, allow_missing=allow_missing,
               batch_end_callback=batch_cbs, epoch_end_callback=epoch_cbs,
               begin_epoch=begin_epoch, num_epoch=args.num_epochs)
    return module


def train_model(args, symbol, validate=True, label_name='softmax_label', data=None,
                **fit_kwargs):
    """Seed, make this worker's data iterators from ``args`` and :func:`fit` ``symbol``.

    The one way every runner and benchmark trains a network on its data: the same seed gives
    the same data order, initialisation and result.

    Parameters
    ----------
    args : argparse.Namespace
        Data and fit options (:func:`add_data_args`, :func:`add_fit_args`).
    symbol : mx.sym.Symbol
        Training graph.
    validate : bool
        Evaluate on the test iterator after each epoch (False: train only).
    label_name : str
        Label input of the graph's loss head.
    data : (kv, train_iter, val_iter) or None
        Iterators already made by :func:`train_iterators` (e.g. to read the class count from
        the training labels first); None makes them.
    **fit_kwargs
        Passed to :func:`fit` (starting params, fixed params, metric, optimizer settings).

    Returns
    -------
    module : mx.mod.Module
    seconds : float
        Wall-clock time of the fit.
    """
    seed_everything(args.seed)
    kv, train_iter, test_iter = data or train_iterators(args, label_name=label_name)
    start = time.time()
    module = fit(args, symbol, train_iter, test_iter if validate else None, kv=kv, **fit_kwargs)
    return module, time.time() - start
