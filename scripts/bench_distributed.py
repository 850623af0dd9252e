#!/usr/bin/env python
"""Throughput of MXNet parameter-server training on this machine: 1 worker vs 2 workers.

Each configuration trains LeNet-5 on MNIST for a fixed number of batches per worker with
``dist_sync`` (scheduler and one server on 127.0.0.1, started by
:func:`mxcompress.distributed.launch_local`), and also once with the ``local`` kvstore as the
single-process reference. Aggregate throughput = samples processed by all workers / the
slowest worker's training time. Each configuration is repeated and the median reported.

Honest caveat, written into the results: this machine has 2 cores, so 2 workers share them
(OMP_NUM_THREADS is set so that workers x threads = 2); the numbers show the overhead of the
parameter server, not a cluster's scaling.

Example::

    python scripts/bench_distributed.py --batches 200 --repeats 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(args):
    """One worker: train ``args.batches`` batches and write its timing to ``args.out``."""
    import mxnet as mx
    import symbols
    from mxcompress.fit import create_kvstore, fit_options, seed_everything, train_iterators

    kv, num_parts, _ = create_kvstore(args.kv_store)
    seed_everything(0)
    n = args.batches * args.batch_size
    options = fit_options(batch_size=args.batch_size, num_examples=n * num_parts,
                          num_test_examples=100, kv_store=args.kv_store, seed=0)
    _, train_iter, _ = train_iterators(options)
    module = mx.mod.Module(symbols.get_symbol(args.network), context=mx.cpu())
    module.bind(train_iter.provide_data, train_iter.provide_label)
    module.init_params(mx.init.Xavier())
    module.init_optimizer(kvstore=kv, optimizer='sgd', optimizer_params={
        'learning_rate': 0.01, 'momentum': 0.9,
        'rescale_grad': 1.0 / (args.batch_size * num_parts)})
    batches = list(train_iter)
    for batch in batches[:5]:  # warm-up
        module.forward_backward(batch)
        module.update()
    mx.nd.waitall()
    start = time.perf_counter()
    for batch in batches:
        module.forward_backward(batch)
        module.update()
    mx.nd.waitall()
    elapsed = time.perf_counter() - start
    with open(os.path.join(args.out, 'worker-%d.json' % kv.rank), 'w') as f:
        json.dump({'samples': len(batches) * args.batch_size, 'seconds': elapsed}, f)


def run_config(args, kv_store, workers, threads):
    from mxcompress.distributed import launch_local
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, os.path.abspath(__file__), '--worker', '--out', out,
               '--kv-store', kv_store, '--batches', str(args.batches),
               '--batch-size', str(args.batch_size), '--network', args.network]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads),
                   PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
        if kv_store == 'local':
            subprocess.run(cmd, env=env, check=True)
        elif launch_local(workers, 1, cmd, timeout=1800, env=env) != 0:
            raise RuntimeError('distributed run failed')
        records = [json.load(open(os.path.join(out, f))) for f in os.listdir(out)]
    samples = sum(r['samples'] for r in records)
    return samples / max(r['seconds'] for r in records)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--network', default='lenet5')
    parser.add_argument('--batches', type=int, default=200, help='batches per worker')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--output', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                         'distributed.json'))
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--out', help=argparse.SUPPRESS)
    parser.add_argument('--kv-store', default='local', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    from mxcompress.measure import machine_info
    from mxcompress.reporting.results import update_results
    configs = [('local kvstore, 1 process, 2 threads', 'local', 1, 2),
               ('dist_sync, 1 worker x 2 threads, 1 server', 'dist_sync', 1, 2),
               ('dist_sync, 2 workers x 1 thread, 1 server', 'dist_sync', 2, 1)]
    samples = {name: [] for name, *_ in configs}
    for _ in range(args.repeats):  # interleaved repeats
        for name, kv_store, workers, threads in configs:
            samples[name].append(run_config(args, kv_store, workers, threads))
            print('%-45s %8.0f samples/s' % (name, samples[name][-1]), flush=True)
    rows = {name: {'kv_store': kv, 'workers': w, 'omp_threads_per_worker': t,
                   'samples_per_s_median': statistics.median(samples[name]),
                   'samples_per_s_runs': samples[name]}
            for name, kv, w, t in configs}
    one = rows[configs[1][0]]['samples_per_s_median']
    two = rows[configs[2][0]]['samples_per_s_median']
    record = {'network': args.network, 'batch_size_per_worker': args.batch_size,
              'batches_per_worker': args.batches, 'repeats': args.repeats, 'configs': rows,
              'two_vs_one_worker': two / one,
              'note': '2-core machine: 2 workers share the same 2 cores as 1 worker with 2 '
                      'threads, so this measures parameter-server overhead, not scaling.',
              'command': 'python scripts/bench_distributed.py --batches %d --repeats %d'
                         % (args.batches, args.repeats)}
    update_results(args.output, {'throughput': record}, machine=machine_info())
    print('2 workers / 1 worker throughput: %.2fx' % record['two_vs_one_worker'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
