"""``deep-compress --max-error-increase`` / ``--target-ratio`` on a small slice of MNIST:
bad budgets are clear errors, a budget of 0 keeps the validation error, the recipe sidecar
replays to the same file bytes."""
import json
import os

import pytest

from mxcompress import cli
from mxcompress.commands.deep_compress import compress

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, 'benchmarks', 'models', 'lenet300')
SMALL = ['--num-examples', '1500', '--val-split', '300', '--num-test-examples', '300',
         '--batch-size', '50', '--prune-epochs', '1', '--quant-epochs', '1',
         '--budget-rounds', '1', '--curve-examples', '300', '--disp-batches', '1000']


@pytest.mark.parametrize('option,value', [
    ('--max-error-increase', '-0.1'), ('--max-error-increase', 'nan'),
    ('--max-error-increase', '100.5'), ('--max-error-increase', 'inf'),
    ('--max-error-increase', 'half'), ('--target-ratio', '0.5'), ('--target-ratio', 'nan')])
def test_bad_budgets_are_clear_errors(tmp_path, capsys, option, value):
    out = str(tmp_path / 'x.mxc')
    with pytest.raises(SystemExit) as exit_:
        cli.main(['deep-compress', MODEL, '--output', out, option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert 'argument %s' % option in err and repr(value) in err
    assert ('[0, 100]' if option == '--max-error-increase' else '> 1') in err
    assert not os.path.exists(out)


def test_budget_and_ratio_are_exclusive_and_need_a_validation_split(tmp_path, capsys):
    out = str(tmp_path / 'x.mxc')
    with pytest.raises(SystemExit):
        cli.main(['deep-compress', MODEL, '--output', out, '--max-error-increase', '1',
                  '--target-ratio', '50'])
    assert 'not allowed with argument' in capsys.readouterr().err
    assert cli.main(['deep-compress', MODEL, '--output', out, '--max-error-increase', '1',
                     '--val-split', '0', '--num-examples', '500']) == 2
    assert 'give --val-split > 0' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(['prune', MODEL, '--output', str(tmp_path / 'p'), '--max-error-increase',
                  'nan'])
    assert 'argument --max-error-increase' in capsys.readouterr().err


def test_budget_zero_keeps_the_validation_error(tmp_path, mnist_dir):
    out = str(tmp_path / 'zero.mxc')
    args = cli.build_parser().parse_args(['deep-compress', MODEL, '--output', out,
                                          '--max-error-increase', '0'] + SMALL)
    report = compress(args)
    assert report['validation_error_promised'] <= report['validation_error_base']
    recipe = json.load(open(out + '.recipe.json'))
    assert recipe['validation_error_promised'] == report['validation_error_promised']
    assert recipe['max_error_increase_points'] == 0.0
    assert recipe['test_error'] == report['test_error']


def test_recipe_sidecar_replays_to_the_same_bytes(tmp_path, mnist_dir, capsys):
    """A generous budget prunes in its round; the saved options redo it byte for byte."""
    out = str(tmp_path / 'auto.mxc')
    args = cli.build_parser().parse_args(
        ['deep-compress', MODEL, '--output', out, '--max-error-increase', '30',
         '--bits', 'lenet300_fc3=6', '--sparsity', 'lenet300_fc3=0.5'] + SMALL)
    report = compress(args)
    recipe = json.load(open(out + '.recipe.json'))
    assert recipe['rounds'] and recipe['rounds'][0]['lenet300_fc1'] > 0   # it pruned
    # explicit options win for the layers they name
    assert all(r['lenet300_fc3'] == 0.5 for r in recipe['rounds'])
    assert recipe['bits']['lenet300_fc3'] == 6
    assert recipe['validation_error_promised'] <= recipe['validation_error_base'] + 0.30
    printed = capsys.readouterr().out
    assert 'recipe: %s.recipe.json' % out in printed and 'ratio' in printed
    again = str(tmp_path / 'replayed.mxc')
    assert cli.main(['deep-compress', MODEL, '--output', again] + recipe['options']) == 0
    assert open(again, 'rb').read() == open(out, 'rb').read()
    assert report['sha256'] == recipe['sha256']
    assert not os.path.exists(again + '.recipe.json')


def test_pack_and_prune_take_a_budget(tmp_path, mnist_dir, capsys):
    """pack: per-layer widths within the budget, no training; prune: the pruning rounds."""
    from mxcompress.checkpoint import load_checkpoint
    from mxcompress.deep_compression.container import read_info
    ckpt = str(tmp_path / 'dc')
    committed = os.path.join(ROOT, 'benchmarks', 'models', 'lenet300.mxc')
    assert cli.main(['unpack', committed, '--output', ckpt]) == 0
    out = str(tmp_path / 'packed.mxc')
    small = ['--num-examples', '1000', '--val-split', '300']
    assert cli.main(['pack', ckpt, out, '--max-error-increase', '0', '--quantize', 'never']
                    + small) == 2
    assert '--quantize never keeps every layer exact' in capsys.readouterr().err
    assert cli.main(['pack', ckpt, out, '--max-error-increase', '0'] + small) == 0
    assert 'widths for a 0.00-point budget' in capsys.readouterr().err
    # narrower widths where they cost no validation error: a smaller file, same error there
    assert read_info(out)['param_bytes'] < read_info(committed)['param_bytes']
    from mxcompress.deep_compression.container import unpack
    from mxcompress.fit import fit_options, validation_data
    from mxcompress.measure import classification_error
    val = validation_data(fit_options(num_examples=1000, val_split=300))
    assert classification_error(*unpack(out), *val) <= classification_error(
        *unpack(committed), *val)
    pruned = str(tmp_path / 'pruned')
    assert cli.main(['prune', MODEL, '--output', pruned, '--max-error-increase', '20',
                     '--num-epochs', '1', '--num-test-examples', '300', '--batch-size', '50',
                     '--sparsity', 'lenet300_fc3=0.3'] + small) == 0
    _, params, _ = load_checkpoint(pruned, 0)
    fc1 = params['lenet300_fc1_weight'].asnumpy()
    assert (fc1 == 0).mean() > 0.2                          # the budget bought sparsity
    assert abs((params['lenet300_fc3_weight'].asnumpy() == 0).mean() - 0.3) < 1e-3
    assert cli.main(['prune', MODEL, '--output', pruned, '--max-error-increase', '1',
                     '--method', 'agp', '--num-epochs', '1'] + small) == 2
    assert '--method level with --num-epochs >= 1' in capsys.readouterr().err


def test_target_ratio_reaches_the_size(tmp_path, mnist_dir):
    """The dual: a size target instead of an error budget."""
    out = str(tmp_path / 'ratio.mxc')
    small = [a for a in SMALL]
    small[small.index('--budget-rounds') + 1] = '3'
    args = cli.build_parser().parse_args(['deep-compress', MODEL, '--output', out,
                                          '--target-ratio', '30'] + small)
    report = compress(args)
    recipe = json.load(open(out + '.recipe.json'))
    assert recipe['target_ratio'] == 30 and recipe['max_error_increase_points'] is None
    assert report['ratio'] >= 30 * 0.9, report['ratio']


@pytest.mark.parametrize('name', ['lenet300-auto.mxc', 'lenet5-auto.mxc'])
def test_committed_budget_files_match_their_recipes(name):
    from mxcompress.checkpoint import sha256_file
    from mxcompress.deep_compression.container import read_info
    path = os.path.join(ROOT, 'benchmarks', 'models', name)
    assert os.path.isfile(path), '%s is not committed' % name
    recipe = json.load(open(path + '.recipe.json'))
    info = read_info(path)
    assert recipe['sha256'] == sha256_file(path)
    assert recipe['file_bytes'] == info['total_bytes'] == os.path.getsize(path)
    assert recipe['ratio'] == pytest.approx(recipe['fp32_bytes'] / info['param_bytes'])
    assert recipe['validation_error_increase_points'] == pytest.approx(
        100 * (recipe['validation_error_promised'] - recipe['validation_error_base']))
    assert '--sparsity-rounds' in recipe['options'] and '--bits' in recipe['options']


@pytest.mark.parametrize('half_costs_images', [0, 1])
def test_search_writes_dense_float16_only_when_validation_error_holds(monkeypatch,
                                                                        half_costs_images):
    """The last choice of the search: biases as float16 when the file's validation error is
    no worse (judged here by a stand-in that charges the float16 file ``half_costs_images``)."""
    import numpy as np
    from mxcompress.checkpoint import load_checkpoint
    from mxcompress.deep_compression import auto
    from mxcompress.deep_compression.container import decode_model
    sym, arg, aux = load_checkpoint(MODEL, 0)
    rng = np.random.RandomState(0)
    data = (rng.rand(64, 1, 28, 28).astype(np.float32), rng.randint(0, 10, 64).astype(np.float32))
    args = cli.build_parser().parse_args(['deep-compress', MODEL, '--output', 'unused.mxc',
                                          '--batch-size', '32'])
    sizes = []

    def error(blob, images, labels):
        sizes.append(len(blob))
        return 0.1 + half_costs_images / 64.0 * (len(blob) < max(sizes))

    monkeypatch.setattr(auto, '_file_error', error)
    bits = {'lenet300_fc1': 3, 'lenet300_fc2': 3, 'lenet300_fc3': 4}
    blob, _ = auto.quantize_and_encode(args, sym, arg, aux, data, data, bits, 0)
    assert len(sizes) == 2 and sizes[0] - sizes[1] == 2 * (300 + 100 + 10)
    assert len(blob) == sizes[1 if half_costs_images == 0 else 0]
    bias = decode_model(blob)[1]['lenet300_fc1_bias'].asnumpy()
    rounded = arg['lenet300_fc1_bias'].asnumpy().astype(np.float16).astype(np.float32)
    assert (bias == rounded).all() == (half_costs_images == 0)
