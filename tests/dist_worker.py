"""A worker of the distributed tests: fine-tune on this worker's shard with a dist kvstore.

Run under ``mxcompress.distributed.launch_local``; writes ``OUT/worker-RANK.params`` (final
params) and ``OUT/worker-RANK.json`` (per-batch training loss, data shard size).
"""
import argparse
import json
import os
import sys

import mxnet as mx
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import fit_args  # noqa: E402  (test helper beside this file)

import symbols  # noqa: E402
from mxcompress import data  # noqa: E402
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', required=True)
    parser.add_argument('--kv-store', default='dist_sync')
    parser.add_argument('--num-examples', type=int, default=1600)
    parser.add_argument('--init', default=None, help='checkpoint prefix (epoch 0) to start from')
    parser.add_argument('--fixed', default='', help='comma-separated fixed param names')
    parser.add_argument('--optimizer', default='sgd', help='registered optimizer name')
    args = parser.parse_args()
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
    module = fit(opts, sym, train_iter, None, arg_params=arg_params, aux_params=aux_params,
                 fixed_param_names=fixed or None, kv=kv, batch_end_callback=recorder)
    final_args, final_aux = module.get_params()
    os.makedirs(args.out, exist_ok=True)
    mx.nd.save(os.path.join(args.out, 'worker-%d.params' % kv.rank), final_args)
    with open(os.path.join(args.out, 'worker-%d.json' % kv.rank), 'w') as f:
        json.dump({'losses': recorder.losses, 'num_data': train_iter.num_data,
                   'rank': kv.rank, 'num_workers': kv.num_workers}, f)


if __name__ == '__main__':
    main()
