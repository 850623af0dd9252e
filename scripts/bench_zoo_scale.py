#!/usr/bin/env python
"""Scale table: gluoncv model-zoo networks at ImageNet shapes (random weights).

For each network of ``--models`` (default ``resnet18_v1 resnet50_v1 mobilenetv2_1.0``), at
input 3x224x224, 1000 classes, random weights (``get_model(name, pretrained=False)``,
Xavier initialised with seed 0, hybridised, one forward, ``export``ed to ``--workdir``; the
exports are never committed):

* params (arguments and BatchNorm statistics) and dense MACs per image
  (:func:`mxcompress.analysis.count_macs`);
* for every sparsity of ``--sparsities`` (default 0.5 0.8): every Convolution /
  FullyConnected weight magnitude-pruned to that sparsity (level pruning,
  :func:`mxcompress.pruning.criteria.level_mask`), then ``mxcompress pack`` with 8-bit conv /
  5-bit fc codebooks (k-means, as the command does by default) and ``mxcompress unpack``, each
  a separate process: wall and CPU seconds, the pack's peak resident memory (``ru_maxrss``)
  beside the resident memory of a process that only imports mxcompress and loads the same
  checkpoint (the MXNet runtime and the input, which every command pays), the ratio
  fp32 params / param bytes of the file, and the largest difference between an unpacked
  weight and the pruned one (k-means error);
* thinning at ``--thin`` (default 0.5): filter pruning in dependency groups
  (:func:`mxcompress.pruning.plan_groups` by L1 norm, then
  :func:`mxcompress.pruning.thin_network`), its MACs and params, and the measured speed-up of
  the thinned network over the dense one at each batch of ``--batches`` (default 1 8) and
  each thread count of ``--threads`` (default 1 2): a child process per thread count
  (``OMP_NUM_THREADS``), both networks timed interleaved in it
  (:func:`mxcompress.measure.time_inference`, median of ``--repeats`` runs after warm-up),
  under the machine-wide timing lock (:func:`mxcompress.measure.timing_lock`).

The weights are random, so the accuracy of a thinned or packed network means nothing here:
this table is about sizes, times and memory at real scale. A network with targets in
:data:`mxcompress.reporting.recipes.ZOO_SCALE_TARGETS` (ResNet-50: pack <= 60 s, unpack
<= 10 s, pack peak <= 4x the fp32 params, at every sparsity) gets ``targets`` and
``targets_met`` in its record. Results merge into
``benchmarks/results/zoo_scale.json`` with the command, :func:`mxcompress.measure.machine_info`
and the load average at start and end (the machine may be shared: other jobs slow the wall
times; CPU seconds are this process tree's own). Runtime on 2 shared cores: about 10-20
minutes for the three networks. Example::

    OMP_NUM_THREADS=1 python scripts/bench_zoo_scale.py --models resnet50_v1 --repeats 10
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from mxcompress.reporting.recipes import ZOO_SCALE_TARGETS  # noqa: E402

RESULTS = os.path.join(ROOT, 'benchmarks', 'results', 'zoo_scale.json')
MODELS = ('resnet18_v1', 'resnet50_v1', 'mobilenetv2_1.0')
SHAPE = (1, 3, 224, 224)

# child process: RSS of the runtime + the loaded checkpoint, nothing else
_BASELINE = ('import sys, resource; import mxcompress.cli; '
             'from mxcompress.checkpoint import load_checkpoint; '
             'load_checkpoint(sys.argv[1], 0); '
             'print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)')


def _child_env(threads=1):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MXNET_CPU_WORKER_NTHREADS='1')
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return env


# runs one command and reports its wall and CPU seconds and peak RSS (KiB) on stderr
_WRAPPER = ('import json, resource, subprocess, sys, time; t = time.perf_counter(); '
            'rc = subprocess.call(sys.argv[1:]); wall = time.perf_counter() - t; '
            'r = resource.getrusage(resource.RUSAGE_CHILDREN); '
            'sys.stderr.write("\\n" + json.dumps([rc, wall, r.ru_utime + r.ru_stime, '
            'r.ru_maxrss]) + "\\n")')


def run_measured(argv, threads=1):
    """Run ``argv`` as a child (through a wrapper process, so that its peak RSS is its own).

    Returns
    -------
    wall_s, cpu_s, peak_rss_mib, stdout
    """
    proc = subprocess.run([sys.executable, '-c', _WRAPPER] + list(argv), env=_child_env(threads),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    rc, wall, cpu, rss = json.loads(proc.stderr.strip().splitlines()[-1])
    if rc or proc.returncode:
        raise RuntimeError('%s failed (%d): %s' % (' '.join(argv), rc, proc.stderr[-2000:]))
    return wall, cpu, rss / 1024.0, proc.stdout


def export_model(name, workdir):
    """Random-weight export of gluoncv ``name`` at 3x224x224; returns its prefix."""
    import mxnet as mx
    from gluoncv.model_zoo import get_model
    prefix = os.path.join(workdir, name)
    if not os.path.exists(prefix + '-symbol.json'):
        mx.random.seed(0)
        np.random.seed(0)
        net = get_model(name, pretrained=False)
        net.initialize(mx.init.Xavier())
        net.hybridize()
        net(mx.nd.zeros(SHAPE))
        net.export(prefix)
    return prefix


def prune_copy(prefix, sparsity):
    """Every conv / FC weight level-pruned to ``sparsity``; returns the new prefix."""
    import mxnet as mx
    from mxcompress.checkpoint import load_checkpoint
    from mxcompress.graph import find_layers
    from mxcompress.pruning.criteria import level_mask
    out = '%s-s%02d' % (prefix, round(100 * sparsity))
    symbol, args, aux = load_checkpoint(prefix, 0)
    for layer in find_layers(symbol):
        if layer.weight in args:
            w = args[layer.weight].asnumpy()
            args[layer.weight] = mx.nd.array(w * level_mask(w, sparsity))
    mx.model.save_checkpoint(out, 0, symbol, args, aux)
    return out


def pack_row(prefix, sparsity, workdir):
    """Pack and unpack the pruned copy: sizes, times, memory."""
    from mxcompress.checkpoint import load_checkpoint
    from mxcompress.deep_compression.container import read_info
    pruned = prune_copy(prefix, sparsity)
    mxc = pruned + '.mxc'
    mx_cmd = [sys.executable, '-m', 'mxcompress']
    pack = mx_cmd + ['pack', pruned, mxc, '--conv-bits', '8', '--fc-bits', '5']
    wall, cpu, peak, _ = run_measured(pack)
    baseline = run_measured([sys.executable, '-c', _BASELINE, pruned])[2]
    unpacked = os.path.join(workdir, os.path.basename(pruned) + '-unpacked')
    uwall, ucpu, _, _ = run_measured(mx_cmd + ['unpack', mxc, '--output', unpacked])
    info = read_info(mxc)
    _, args, aux = load_checkpoint(pruned, 0)
    _, uargs, _ = load_checkpoint(unpacked, 0)
    fp32 = 4 * (sum(v.size for v in args.values()) + sum(v.size for v in aux.values()))
    err = max(float(np.abs(uargs[k].asnumpy() - args[k].asnumpy()).max()) for k in args)
    zeros = sum(int((args[k].asnumpy() == 0).sum()) for k in info['layers'])
    weights = sum(int(args[k].size) for k in info['layers'])
    return {'sparsity': sparsity, 'weight_sparsity': zeros / weights,
            'conv_bits': 8, 'fc_bits': 5,
            'file_bytes': info['total_bytes'], 'param_bytes': info['param_bytes'],
            'graph_bytes': info['graph_bytes'], 'fp32_bytes': fp32,
            'ratio': fp32 / info['param_bytes'],
            'pack_wall_s': wall, 'pack_cpu_s': cpu,
            'unpack_wall_s': uwall, 'unpack_cpu_s': ucpu,
            'pack_peak_rss_mib': peak, 'runtime_and_checkpoint_rss_mib': baseline,
            'pack_peak_over_fp32': peak * 2 ** 20 / fp32,
            'pack_extra_rss_over_fp32': (peak - baseline) * 2 ** 20 / fp32,
            'max_abs_weight_change': err}


def thin(prefix, fraction):
    """Thin the dense export in dependency groups; returns (prefix of the thinned, info)."""
    import mxnet as mx
    from mxcompress.analysis import count_params
    from mxcompress.checkpoint import load_checkpoint
    from mxcompress.pruning.filters import plan_groups, thin_network
    symbol, args, aux = load_checkpoint(prefix, 0)
    plan = plan_groups(symbol, args, fraction, criterion='l1', aux_params=aux, data_shape=SHAPE)
    tsym, targs, taux = thin_network(symbol, args, aux, plan, data_shape=SHAPE)
    out = prefix + '-thinned'
    mx.model.save_checkpoint(out, 0, tsym, targs, taux)
    return out, {'fraction': fraction, 'criterion': 'l1',
                 'groups_thinned': len(plan.groups), 'groups_left_dense': len(plan.skipped),
                 'left_dense_reasons': sorted({r for g in plan.skipped for r in g['reasons']}),
                 'params': count_params(targs), 'macs': int(plan.macs_after),
                 'macs_fraction': plan.macs_after / float(plan.macs_before)}


def time_child(dense, thinned, batches, repeats):
    """(child) time dense vs thinned at each batch, interleaved; prints JSON."""
    from mxcompress.checkpoint import load_checkpoint
    from mxcompress.measure import time_inference
    models = {'dense': load_checkpoint(dense, 0), 'thinned': load_checkpoint(thinned, 0)}
    out = {}
    for batch in batches:
        t = time_inference(models, batch, repeats=repeats, warmup=3, data_shape=SHAPE[1:])
        out[str(batch)] = {'dense_ms': t['dense']['median_ms'],
                           'thinned_ms': t['thinned']['median_ms'],
                           'speedup': t['dense']['median_ms'] / t['thinned']['median_ms']}
    print(json.dumps(out))


def speedups(dense, thinned, batches, threads, repeats):
    from mxcompress.measure import timing_lock
    result = {}
    with timing_lock():
        for n in threads:
            argv = [sys.executable, os.path.abspath(__file__), '--time-child', dense, thinned,
                    '--batches'] + [str(b) for b in batches] + ['--repeats', str(repeats)]
            _, _, _, out = run_measured(argv, threads=n)
            for batch, row in json.loads(out.strip().splitlines()[-1]).items():
                result['batch%s_threads%d' % (batch, n)] = dict(row, batch=int(batch), threads=n)
    return result


def bench_model(name, args):
    from mxcompress.analysis import count_macs, count_params
    from mxcompress.checkpoint import load_checkpoint
    started = time.time()
    prefix = export_model(name, args.workdir)
    symbol, arg_params, aux_params = load_checkpoint(prefix, 0)
    record = {'model': name, 'input_shape': list(SHAPE[1:]), 'weights': 'random (Xavier, seed 0)',
              'params': count_params(arg_params),
              'aux_params': int(sum(v.size for v in aux_params.values())),
              'macs': int(count_macs(symbol, SHAPE))}
    print('%s: %.2f M params, %.2f G MACs' % (name, record['params'] / 1e6, record['macs'] / 1e9),
          file=sys.stderr)
    record['pack'] = []
    for sparsity in args.sparsities:
        row = pack_row(prefix, sparsity, args.workdir)
        record['pack'].append(row)
        print('  %.0f %% sparse: %.1fx, pack %.1f s (cpu %.1f), unpack %.1f s (cpu %.1f), peak '
              '%.0f MiB (runtime + checkpoint %.0f MiB)'
              % (100 * sparsity, row['ratio'], row['pack_wall_s'], row['pack_cpu_s'],
                 row['unpack_wall_s'], row['unpack_cpu_s'], row['pack_peak_rss_mib'],
                 row['runtime_and_checkpoint_rss_mib']), file=sys.stderr)
    if args.thin > 0:
        thinned, info = thin(prefix, args.thin)
        info['speedup'] = speedups(prefix, thinned, args.batches, args.threads, args.repeats)
        record['thinned'] = info
        print('  thinned %.0f %%: %.2f G MACs (%.0f %%), speed-ups %s'
              % (100 * args.thin, info['macs'] / 1e9, 100 * info['macs_fraction'],
                 ', '.join('%s %.2fx' % (k, v['speedup'])
                           for k, v in sorted(info['speedup'].items()))), file=sys.stderr)
    targets = ZOO_SCALE_TARGETS.get(name)
    if targets:      # upper bounds, at every sparsity packed
        record['targets'] = dict(targets)
        record['targets_met'] = {key: all(row[key] <= bound for row in record['pack'])
                                 for key, bound in targets.items()}
    record['bench_seconds'] = time.time() - started
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        help='gluoncv model-zoo names (default: %(default)s)')
    parser.add_argument('--sparsities', nargs='+', type=float, default=[0.5, 0.8],
                        help='magnitude sparsities packed (default: %(default)s)')
    parser.add_argument('--thin', type=float, default=0.5,
                        help='fraction of each channel group removed by thinning; 0 skips '
                             'thinning and timing (default: %(default)s)')
    parser.add_argument('--batches', nargs='+', type=int, default=[1, 8],
                        help='batch sizes timed (default: %(default)s)')
    parser.add_argument('--threads', nargs='+', type=int, default=[1, 2],
                        help='OMP thread counts timed, one child process each '
                             '(default: %(default)s)')
    parser.add_argument('--repeats', type=int, default=15,
                        help='timed forward passes per network, batch and thread count (median '
                             'reported; default: %(default)s)')
    parser.add_argument('--workdir', default=None,
                        help='where the exports, pruned copies and .mxc files go (default: a '
                             'temporary directory, removed afterwards)')
    parser.add_argument('--output', default=RESULTS,
                        help='results file (merged; default: %(default)s)')
    parser.add_argument('--time-child', nargs=2, metavar=('DENSE', 'THINNED'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.time_child:
        return time_child(args.time_child[0], args.time_child[1], args.batches, args.repeats)
    from mxcompress.measure import machine_info
    from mxcompress.reporting.results import update_results
    load_start = os.getloadavg()
    cleanup = None
    if args.workdir is None:
        cleanup = tempfile.TemporaryDirectory(prefix='zoo-scale-')
        args.workdir = cleanup.name
    os.makedirs(args.workdir, exist_ok=True)
    command = 'python scripts/bench_zoo_scale.py ' + ' '.join(sys.argv[1:] if argv is None
                                                               else argv)
    try:
        for name in args.models:
            record = bench_model(name, args)
            record['command'] = command
            record['selection'] = 'none'   # no choice made on any data: random weights
            record['load_average_start'] = list(load_start)
            record['load_average_end'] = list(os.getloadavg())
            record['shared_machine'] = ('2 cores shared with other jobs: wall times include '
                                        'their interference (see the load averages); CPU '
                                        'seconds are this process tree\'s own')
            update_results(args.output, {name: record}, machine=machine_info())
    finally:
        if cleanup is not None:
            cleanup.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
