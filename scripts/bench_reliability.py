#!/usr/bin/env python
"""Reliability benchmark: how the toolkit fails, by family, into benchmarks/results/reliability.json.

Families (``--parts``, default all):

``bad_arguments``
    Bad options and files through the real command line (a subprocess per case): each must
    exit with status 2 (bad input), print one line naming the option or file and the cause,
    and no traceback.
``fault_injection``
    A crash at every file operation of a checkpoint save (each ``os.replace`` and each write
    in turn fails): afterwards the prefix must load as the complete old checkpoint or be
    refused -- never a mix of old and new files read silently -- and no temporary is left.
``regressions``
    The regression tests of every reported failure (divergence, checkpoints, resume, the
    launcher, the ``.mxc`` corpus and fuzz, the xnor op's ASan build and fuzz): pytest, cases
    counted per file.
``container_fuzz``
    ``scripts/fuzz_container.py`` for ``--fuzz-seconds``: structured mutations of valid
    ``.mxc`` files, executions and crashes.
``op_fuzz``
    ``python -m mxcompress.ops.selfcheck`` over random geometries on every kernel path of
    this CPU, each case exact against ``Convolution`` on sign inputs.
``default_lr``
    Every network of ``mxcompress networks`` trained for 1 epoch on 12,800 images with the
    default options: the loss must stay finite and the error fall well below chance.

Example::

    python scripts/bench_reliability.py                 # everything, about 15 minutes
    python scripts/bench_reliability.py --parts bad_arguments fault_injection
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, 'benchmarks', 'models')
RESULTS = os.path.join(ROOT, 'benchmarks', 'results', 'reliability.json')
PARTS = ('bad_arguments', 'fault_injection', 'regressions', 'container_fuzz', 'op_fuzz',
         'default_lr')
REGRESSION_TESTS = ['tests/test_reliability.py', 'tests/test_resume.py',
                    'tests/test_checkpoint.py', 'tests/test_distributed_failures.py',
                    'tests/test_container.py', 'tests/test_container_fuzz.py',
                    'tests/test_xnor_fuzz_regressions.py', 'tests/test_xnor_asan.py',
                    'tests/test_xnor_errors.py', 'tests/test_data.py']


def _lenet300(tmp):
    return os.path.join(MODELS, 'lenet300'), os.path.join(tmp, 'out')


def bad_argument_cases(tmp):
    """(command line, the text its one-line error must contain)."""
    model, out = _lenet300(tmp)
    garbage = os.path.join(tmp, 'garbage-symbol.json')
    with open(garbage, 'wb') as f:
        f.write(b'\xff{ not json')
    with open(os.path.join(tmp, 'garbage-0000.params'), 'wb') as f:
        f.write(b'\0' * 64)
    notmxc = os.path.join(tmp, 'x.mxc')
    with open(notmxc, 'wb') as f:
        f.write(b'MXCPACK\0' + b'\0' * 30)
    return [
        (['train', '--lr', 'inf'], '--lr: must be a finite number'),
        (['train', '--lr', 'nan'], '--lr: must be a finite number'),
        (['train', '--lr', '-0.1'], '--lr: must be > 0'),
        (['train', '--mom', '-5'], '--mom: must be in'),
        (['train', '--jitter', '100'], '--jitter: must be in 0..8'),
        (['train', '--lr-step-epochs', 'a'], '--lr-step-epochs: must be comma-separated'),
        (['train', '--lr-step-epochs', '5,3'], '--lr-step-epochs: must be increasing'),
        (['train', '--num-classes', '0'], '--num-classes: must be a positive integer'),
        (['train', '--num-epochs', '-1'], '--num-epochs: must be a positive integer'),
        (['train', '--batch-size', '0'], '--batch-size: must be a positive integer'),
        (['train', '--network', 'nosuch'], "unknown network 'nosuch'"),
        (['train', '--num-examples', '100', '--batch-size', '128'], 'is larger than the 90'),
        (['train', '--data-dir', tmp], 'no data set recognised'),
        (['train', '--model-prefix', tmp + '/'], 'names a directory'),
        (['train', '--model-prefix', tmp], 'names a directory'),
        (['prune', model, '--sparsity', '1.5', '--output', out], 'sparsity'),
        (['prune', model, '--method', 'filter', '--sparsity', '0.5', '--output', out],
         'has no Convolution layer'),
        (['prune', model, '--sparsity', 'nosuch=0.5', '--output', out], 'nosuch'),
        (['prune', model, '--sparsity', '0.5', '--output', model], 'would overwrite the input'),
        (['prune', model, '--sparsity', '0.5', '--num-epochs', '-1', '--output', out],
         'must be an integer >= 0'),
        (['lowrank', model, '--rank', '5', '--num-epochs', '-1', '--output', out],
         'must be an integer >= 0'),
        (['lowrank', model, '--ranks', 'lenet300_fc1', '--output', out], 'expected NAME=VALUE'),
        (['lowrank', model, '--rank', '100000', '--output', out], 'rank'),
        (['deep-compress', model, '--output', out + '.mxc', '--prune-epochs', '-2'],
         'must be an integer >= 0'),
        (['deep-compress', model, '--output', out + '.mxc', '--bits', 'nosuch=4'],
         'unknown layer(s) nosuch'),
        (['deep-compress', model, '--output', tmp], 'names a directory'),
        (['pack', model, out + '.mxc', '--bits', 'lenet300_fc1=99'], 'bits must be in'),
        (['pack', model, model + '-0000.params'], 'input'),
        (['pack', model, out + '.mxc', '--bits', 'nosuch=4'], 'unknown layer(s) nosuch'),
        (['train', '--network', 'bnn-resnet'], 'is a binary network'),
        (['train', '--data', tmp + '/nosuch.npz'], 'nosuch.npz'),
        (['summary', os.path.join(tmp, 'garbage')], 'not a symbol file'),
        (['summary', os.path.join(tmp, 'missing')], 'not found'),
        (['info', notmxc], 'x.mxc'),
        (['info', '/dev/zero'], '/dev/zero'),
        (['info', tmp], tmp),
        (['unpack', notmxc, '--output', out], 'x.mxc'),
        (['distill', '--temperature', '0', '--teacher-prefix', model], 'Temperature'),
        (['distill', '--mimic-weight', '-1', '--teacher-prefix', model], 'mimic_weight'),
        (['distill'], 'needs --teacher-prefix'),
        (['train-bnn', '--num-bits', '9'], '--num-bits'),
        (['train-bnn', '--network', 'xnor-lenet5', '--num-bits', '2'], 'bnn-resnet only'),
        (['xnor-convert', model, out], 'no binary convolution'),
        (['train', '--kv-store', 'dist_sync', '--num-epochs', '1'], 'DMLC'),
    ]


def run_bad_arguments():
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, MXCOMPRESS_PS_CONNECT_TIMEOUT='5')
        for argv, expected in bad_argument_cases(tmp):
            start = time.time()
            proc = subprocess.run([sys.executable, '-m', 'mxcompress'] + argv, cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, timeout=300)
            err = proc.stderr.strip().splitlines()
            last = err[-1] if err else ''
            ok = (proc.returncode == 2 and expected in proc.stderr
                  and 'Traceback' not in proc.stderr)
            cases.append({'argv': ['mxcompress'] + [a.replace(tmp, 'TMP') for a in argv],
                          'exit': proc.returncode, 'expected': expected,
                          'message': last.replace(tmp, 'TMP')[:300], 'passed': bool(ok),
                          'seconds': round(time.time() - start, 2)})
            print('%-6s %s -> %d: %s' % ('ok' if ok else 'FAILED', ' '.join(argv)[:70],
                                         proc.returncode, last[:100]), flush=True)
    return _summary(cases)


def run_fault_injection():
    """Every file operation of a checkpoint save fails in turn."""
    import numpy as np
    import symbols
    from mxcompress import checkpoint

    sym = symbols.get_symbol('lenet300')
    shapes = dict(zip(sym.list_arguments(), sym.infer_shape(data=(1, 1, 28, 28))[0]))

    def params(seed):
        import mxnet as mx
        rng = np.random.RandomState(seed)
        return {k: mx.nd.array(rng.randn(*s)) for k, s in shapes.items()
                if k not in ('data', 'softmax_label')}
    old, new = params(0), params(1)
    cases = []
    for operation in ('replace', 'fsync', 'save'):
        for fail_at in range(1, 8):
            with tempfile.TemporaryDirectory() as tmp:
                prefix = os.path.join(tmp, 'm')
                checkpoint.save_checkpoint(prefix, 1, sym, old, {})
                calls = []
                real = {'replace': os.replace, 'fsync': os.fsync,
                        'save': checkpoint.mx.nd.save}[operation]

                def failing(*a, **k):
                    calls.append(a)
                    if len(calls) == fail_at:
                        raise OSError(28, 'No space left on device (injected)')
                    return real(*a, **k)
                target = checkpoint.mx.nd if operation == 'save' else checkpoint.os
                setattr(target, operation, failing)
                try:
                    checkpoint.save_checkpoint(prefix, 1, sym, new, {})
                    crashed = False
                except OSError:
                    crashed = True
                finally:
                    setattr(target, operation, real)
                if not crashed:
                    continue   # fewer operations than fail_at: not a fault point
                leftovers = [f for f in os.listdir(tmp) if f.endswith('.tmp')]
                try:
                    _, got, _ = checkpoint.load_checkpoint(prefix, 1)
                    which = ('old' if np.array_equal(got['lenet300_fc1_weight'].asnumpy(),
                                                     old['lenet300_fc1_weight'].asnumpy())
                             else 'new' if np.array_equal(got['lenet300_fc1_weight'].asnumpy(),
                                                          new['lenet300_fc1_weight'].asnumpy())
                             else 'mixed')
                except checkpoint.CheckpointError as err:
                    which = 'refused: ' + str(err)[:120].replace(tmp, 'TMP')
                ok = which in ('old', 'new') or which.startswith('refused') and not leftovers
                cases.append({'operation': operation, 'fails_at_call': fail_at,
                              'result': which, 'temporaries_left': leftovers,
                              'passed': bool(ok and not leftovers)})
                print('%-6s %s #%d -> %s' % ('ok' if cases[-1]['passed'] else 'FAILED',
                                             operation, fail_at, which[:60]), flush=True)
    return _summary(cases)


def run_regressions(python):
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, 'junit.xml')
        subprocess.run([python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                        '--junitxml', report] + REGRESSION_TESTS, cwd=ROOT)
        tree = ElementTree.parse(report)
    by_file = {}
    for case in tree.iter('testcase'):
        name = case.get('classname', '').replace('.', '/') + '.py'
        entry = by_file.setdefault(name, {'tried': 0, 'passed': 0, 'failed': 0, 'skipped': 0})
        entry['tried'] += 1
        if case.find('failure') is not None or case.find('error') is not None:
            entry['failed'] += 1
        elif case.find('skipped') is not None:
            entry['skipped'] += 1
        else:
            entry['passed'] += 1
    totals = {k: sum(e[k] for e in by_file.values()) for k in ('tried', 'passed', 'failed',
                                                                 'skipped')}
    return dict(totals, by_file=by_file)


def run_container_fuzz(python, seconds):
    out = subprocess.run([python, os.path.join(ROOT, 'scripts', 'fuzz_container.py'),
                          '--seconds', str(seconds)], cwd=ROOT, stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    import json
    result = json.loads(out[out.index('{'):])   # the script prints one (indented) object
    result['command'] = 'python scripts/fuzz_container.py --seconds %d' % seconds
    return result


def run_op_fuzz(python, seeds, fuzz):
    start = time.time()
    proc = subprocess.run([python, '-m', 'mxcompress.ops.selfcheck', '--seeds', str(seeds),
                           '--fuzz', str(fuzz)], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    counts = re.findall(r'(\d+) cases?', proc.stdout)
    return {'exit': proc.returncode, 'passed': proc.returncode == 0 and 'selfcheck OK' in
            proc.stdout, 'summary': proc.stdout.strip().splitlines()[-1:],
            'cases_reported': [int(c) for c in counts][-1:], 'seconds': time.time() - start,
            'command': 'python -m mxcompress.ops.selfcheck --seeds %d --fuzz %d' % (seeds, fuzz)}


def run_default_lr(python):
    networks = subprocess.run([python, '-m', 'mxcompress', 'networks'], cwd=ROOT,
                              stdout=subprocess.PIPE, universal_newlines=True,
                              check=True).stdout.split()
    from mxcompress.commands.train_bnn import BINARY_NETWORKS
    cases = []
    for network in networks:
        command = 'train-bnn' if network in BINARY_NETWORKS else 'train'
        argv = [command, '--network', network, '--num-epochs', '1', '--num-examples', '12800',
                '--num-test-examples', '2000', '--disp-batches', '50']
        start = time.time()
        proc = subprocess.run([python, '-m', 'mxcompress'] + argv, cwd=ROOT,
                              env=dict(os.environ, OMP_NUM_THREADS='1'),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)
        found = re.search(r'test error: ([\d.]+)%', proc.stdout)
        losses = [float(v) for v in re.findall(r'cross-entropy=([\w.+-]+)', proc.stderr)
                  if v not in ('nan', 'inf')]
        error = float(found.group(1)) / 100 if found else None
        ok = proc.returncode == 0 and error is not None and error < 0.5
        cases.append({'network': network, 'command': command, 'exit': proc.returncode,
                      'test_error_2000': error,
                      'last_train_cross_entropy': losses[-1] if losses else None,
                      'passed': bool(ok), 'seconds': round(time.time() - start, 1),
                      'message': proc.stderr.strip().splitlines()[-1][:200]
                      if proc.returncode else None})
        print('%-6s %-18s error %s' % ('ok' if ok else 'FAILED', network,
                                       '%.2f%%' % (100 * error) if error is not None else '-'),
              flush=True)
    return dict(_summary(cases), options='the defaults of mxcompress train (SGD momentum 0.9, '
                'lr 0.02, batch 64, no schedule) and, for binary networks, of mxcompress '
                'train-bnn (Adam, lr 0.005, cosine, batch 100); 1 epoch on 12,800 images, error '
                'on 2,000 test images; converged = finite loss and error < 50 % (chance 90 %)')


def _summary(cases):
    return {'tried': len(cases), 'passed': sum(c['passed'] for c in cases),
            'failed': sum(not c['passed'] for c in cases), 'cases': cases}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('--parts', nargs='+', choices=PARTS, default=list(PARTS))
    parser.add_argument('--fuzz-seconds', type=int, default=120,
                        help='container fuzz duration')
    parser.add_argument('--op-seeds', type=int, default=10, help='op fuzz: seeds')
    parser.add_argument('--op-fuzz', type=int, default=10, help='op fuzz: random cases per seed')
    parser.add_argument('--output', default=RESULTS)
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    from mxcompress.logs import setup_logging
    from mxcompress.measure import machine_info
    from mxcompress.reporting.results import update_results
    setup_logging(verbose=False)
    python = sys.executable
    command = 'python scripts/bench_reliability.py ' + ' '.join(argv if argv is not None
                                                                else sys.argv[1:])
    for part in args.parts:
        start = time.time()
        if part == 'bad_arguments':
            record = run_bad_arguments()
        elif part == 'fault_injection':
            record = run_fault_injection()
        elif part == 'regressions':
            record = run_regressions(python)
        elif part == 'container_fuzz':
            record = run_container_fuzz(python, args.fuzz_seconds)
        elif part == 'op_fuzz':
            record = run_op_fuzz(python, args.op_seeds, args.op_fuzz)
        else:
            record = run_default_lr(python)
        record.update(command=command, wall_seconds=round(time.time() - start, 1))
        update_results(args.output, {part: record}, machine=machine_info())
        print('%s: %s' % (part, {k: v for k, v in record.items()
                                 if k in ('tried', 'passed', 'failed', 'executions', 'crashes')}),
              flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
