"""Record, or compare against a record, what the command-line tools print and write.

A refactoring must not change behaviour. This script runs only the public entry points
(``mxcompress ...`` and ``python train/*.py``) in subprocesses, so the same script measures
the tree before and after a change of layout:

- the ``--help`` text of ``mxcompress``, of every subcommand and of every ``train/*.py``;
- SHA-256 of what ``unpack`` and ``info --json`` make of each committed ``.mxc`` file, of
  ``pack benchmarks/models/lenet300-pruned`` and of ``xnor-convert benchmarks/models/bnn-resnet``;
- the test error printed by short seeded runs (``deep-compress``, ``distill``, ``train-bnn``
  on 2,000 training images, 1 epoch, 1 thread).

Usage::

    python scripts/check_unchanged.py --save benchmarks/results/unchanged.json   # before
    python scripts/check_unchanged.py --compare benchmarks/results/unchanged.json  # after

``--compare`` prints every difference and exits 1 if there is one. ``--only help`` limits the
work to the help texts (a few seconds). MNIST is read from ``$MXCOMPRESS_DATA``.
"""
import argparse
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, 'benchmarks', 'models')
COMMANDS = ['train', 'networks', 'summary', 'report', 'prune', 'lowrank', 'pack', 'unpack', 'info',
            'deep-compress', 'train-bnn', 'xnor-convert', 'distill']
QUICK = ['--num-examples', '2000', '--num-test-examples', '2000', '--seed', '0']
SEEDED_RUNS = {
    'deep-compress': ['deep-compress', os.path.join(MODELS, 'lenet300'), '--output', '{tmp}/dc.mxc',
                      '--prune-steps', '1', '--prune-epochs', '1', '--quant-epochs', '1'] + QUICK,
    'distill': ['distill', '--teacher-prefix', os.path.join(MODELS, 'kd-teacher'),
                '--num-epochs', '1', '--temperature', '20', '--output-prefix', '{tmp}/student'] + QUICK,
    'train-bnn': ['train-bnn', '--network', 'bnn-resnet', '--num-epochs', '1', '--no-val',
                  '--model-prefix', '{tmp}/bnn'] + QUICK,
}


def _run(argv, env=None):
    env = dict(env or os.environ, PYTHONPATH=ROOT)  # this tree's package, not an installed one
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if proc.returncode != 0:
        raise RuntimeError('%s exited %d:\n%s' % (' '.join(argv), proc.returncode, proc.stderr[-3000:]))
    return proc.stdout


def _cli(*args, env=None):
    return _run([sys.executable, '-m', 'mxcompress'] + list(args), env=env)


def _sha(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _tree_hashes(directory):
    """SHA-256 of every file in ``directory`` by file name."""
    return {name: _sha(os.path.join(directory, name)) for name in sorted(os.listdir(directory))}


def help_texts():
    """``--help`` output of every entry point, keyed by its command line."""
    env = dict(os.environ, COLUMNS='100')
    texts = {'mxcompress --help': _cli('--help', env=env)}
    for name in COMMANDS:
        texts['mxcompress %s --help' % name] = _cli(name, '--help', env=env)
    for script in sorted(glob.glob(os.path.join(ROOT, 'train', '*.py'))):
        rel = os.path.relpath(script, ROOT)
        texts['python %s --help' % rel] = _run([sys.executable, rel, '--help'], env=env)
    return texts


def output_hashes():
    """SHA-256 of the files and JSON that unpack, info, pack and xnor-convert produce."""
    hashes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mxc in sorted(glob.glob(os.path.join(MODELS, '*.mxc'))):
            name = os.path.basename(mxc)
            out = os.path.join(tmp, name.replace('.', '_'))
            os.makedirs(out)
            _cli('unpack', mxc, '--output', os.path.join(out, 'model'))
            hashes['unpack ' + name] = _tree_hashes(out)
            hashes['info --json ' + name] = hashlib.sha256(_cli('info', '--json', mxc).encode()).hexdigest()
        packed = os.path.join(tmp, 'lenet300-pruned.mxc')
        _cli('pack', os.path.join(MODELS, 'lenet300-pruned'), packed)
        hashes['pack lenet300-pruned'] = _sha(packed)
        xnor = os.path.join(tmp, 'xnor')
        os.makedirs(xnor)
        _cli('xnor-convert', os.path.join(MODELS, 'bnn-resnet'), os.path.join(xnor, 'bnn-resnet-xnor'))
        hashes['xnor-convert bnn-resnet'] = _tree_hashes(xnor)
    return hashes


def seeded_errors():
    """The test error lines printed by each short seeded run, on one thread."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MXNET_CPU_WORKER_NTHREADS='1')
    errors = {}
    for name, argv in sorted(SEEDED_RUNS.items()):
        with tempfile.TemporaryDirectory() as tmp:
            out = _cli(*[arg.format(tmp=tmp) for arg in argv], env=env)
        errors[name] = re.findall(r'.*error.*', out)
    return errors


PARTS = {'help': help_texts, 'outputs': output_hashes, 'runs': seeded_errors}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument('--save', metavar='JSON', help='record the current behaviour here')
    mode.add_argument('--compare', metavar='JSON', help='compare the current behaviour with this record')
    parser.add_argument('--only', nargs='+', choices=sorted(PARTS), default=sorted(PARTS),
                        help='which parts to record or compare')
    args = parser.parse_args(argv)
    current = {part: PARTS[part]() for part in args.only}
    if args.save:
        with open(args.save, 'w') as handle:
            json.dump(current, handle, indent=1, sort_keys=True)
            handle.write('\n')
        print('recorded %s in %s' % (', '.join(args.only), args.save))
        return 0
    with open(args.compare) as handle:
        recorded = json.load(handle)
    differences = 0
    for part in args.only:
        for key in sorted(set(recorded[part]) | set(current[part])):
            if recorded[part].get(key) != current[part].get(key):
                differences += 1
                print('DIFFERENT %s: %s' % (part, key))
                print('  recorded: %r' % (recorded[part].get(key),))
                print('  now:      %r' % (current[part].get(key),))
    checked = sum(len(current[part]) for part in args.only)
    print('%d of %d entries differ' % (differences, checked))
    return 1 if differences else 0


if __name__ == '__main__':
    sys.exit(main())
