"""A worker of the distributed tests: fine-tune on this worker's shard with a dist kvstore.

Run under ``mxcompress.distributed.launch_local``; writes ``OUT/worker-RANK.params`` (final
params) and ``OUT/worker-RANK.json`` (per-batch training loss, data shard size).

With ``--rank0-checkpoint`` the worker joins through ``create_dist_kvstore`` (bounded connect)
and its epoch-end callback writes ``OUT/ckpt-EPOCH.params`` (+ ``.sha256`` and a
``ckpt-written-by-RANK`` marker) wrapped in ``rank0_only``, as fit.py's checkpoint callback
is; after the barrier every worker records whether it sees the complete checkpoint.
"""
import argparse
import hashlib
import json
import os
import sys
import time

import mxnet as mx
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import fit_args  # noqa: E402  (test helper beside this file)

import symbols  # noqa: E402
from mxcompress import data  # noqa: E402
from mxcompress.distributed import create_dist_kvstore, rank0_only  # noqa: E402
from mxcompress.fit import create_kvstore, fit  # noqa: E402


class LossRecorder:
    """Batch-end callback keeping the cross-entropy of every batch."""

    def __init__(self):
        self.losses = []

    def __call__(self, param):
        for name, value in param.eval_metric.get_name_value():
            if name == 'cross-entropy':
                self.losses.append(value)
        param.eval_metric.reset()


class CheckpointWriter:
    """Epoch-end callback writing params + sha256 like a checkpoint; slow on purpose, so a
    worker that did not wait for it would find it missing."""

    def __init__(self, out, rank):
        self.out, self.rank = out, rank

    def __call__(self, epoch, sym, arg_params, aux_params):
        time.sleep(1.0)
        path = os.path.join(self.out, 'ckpt-%04d.params' % (epoch + 1))
        mx.nd.save(path + '.tmp', arg_params)
        os.replace(path + '.tmp', path)
        with open(path, 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        with open(path + '.sha256', 'w') as f:
            f.write(digest + '\n')
        open(os.path.join(self.out, 'ckpt-written-by-%d' % self.rank), 'a').close()


def checkpoint_complete(out, epoch):
    path = os.path.join(out, 'ckpt-%04d.params' % epoch)
    try:
        with open(path, 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        return open(path + '.sha256').read().strip() == digest
    except OSError:
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', required=True)
    parser.add_argument('--kv-store', default='dist_sync')
    parser.add_argument('--num-examples', type=int, default=1600)
    parser.add_argument('--init', default=None, help='checkpoint prefix (epoch 0) to start from')
    parser.add_argument('--fixed', default='', help='comma-separated fixed param names')
    parser.add_argument('--optimizer', default='sgd', help='registered optimizer name')
    parser.add_argument('--rank0-checkpoint', action='store_true',
                        help='write an epoch-end checkpoint from rank 0 only (see module doc)')
    args = parser.parse_args()
    if args.rank0_checkpoint:
        kv = create_dist_kvstore(args.kv_store)
        num_parts, part_index = kv.num_workers, kv.rank
    else:
        kv, num_parts, part_index = create_kvstore(args.kv_store)
    train_iter, _ = data.mnist_iterators(32, num_examples=args.num_examples,
                                         num_test_examples=100, num_parts=num_parts,
                                         part_index=part_index, seed=1)
    if args.init:
        from mxcompress.checkpoint import load_checkpoint
        sym, arg_params, aux_params = load_checkpoint(args.init, 0)
    else:
        sym, arg_params, aux_params = symbols.get_symbol('lenet300'), None, None
    recorder = LossRecorder()
    if args.optimizer.startswith('latentclip'):
        import mxcompress.binary.optimizer  # noqa: F401  registers the latent-clip optimizers
    opts = fit_args(num_epochs=1, batch_size=32, lr=0.05, lr_schedule='none',
                    num_examples=train_iter.num_data, kv_store=args.kv_store,
                    optimizer=args.optimizer)
    fixed = [n for n in args.fixed.split(',') if n]
    epoch_cbs, seen = [], []
    if args.rank0_checkpoint:
        os.makedirs(args.out, exist_ok=True)
        epoch_cbs = [rank0_only(kv, CheckpointWriter(args.out, kv.rank)),
                     lambda epoch, *_: seen.append(checkpoint_complete(args.out, epoch + 1))]
    module = fit(opts, sym, train_iter, None, arg_params=arg_params, aux_params=aux_params,
                 fixed_param_names=fixed or None, kv=kv, batch_end_callback=recorder,
                 epoch_end_callback=epoch_cbs or None)
    final_args, final_aux = module.get_params()
    os.makedirs(args.out, exist_ok=True)
    mx.nd.save(os.path.join(args.out, 'worker-%d.params' % kv.rank), final_args)
    with open(os.path.join(args.out, 'worker-%d.json' % kv.rank), 'w') as f:
        json.dump({'losses': recorder.losses, 'num_data': train_iter.num_data,
                   'rank': kv.rank, 'num_workers': kv.num_workers,
                   'saw_checkpoint': seen}, f)


if __name__ == '__main__':
    main()
