"""The .mxc container and its Huffman coder against the weights they came from."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import symbols
from mxcompress import cli
from mxcompress.checkpoint import load_checkpoint, save_checkpoint
from mxcompress.deep_compression.container import (ContainerError, container_info, decode_model, encode_model,
                                  pack, read_info, unpack)
from mxcompress.deep_compression.huffman import (canonical_codes, huffman_decode, huffman_encode,
                                huffman_lengths, pack_bits, unpack_bits)
from mxcompress.quantization.codebook import quantize_params
from mxcompress.quantization.scalar import dequantize
from mxcompress.deep_compression.sparse_codec import sparse_entries, sparse_positions


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=0, max_size=300))
def test_huffman_roundtrip_and_prefix_free(values):
    values = np.array(values, np.int64)
    lengths = huffman_lengths(values, 41)
    data, nbits = huffman_encode(values, lengths)
    np.testing.assert_array_equal(huffman_decode(data, len(values), lengths), values)
    codes = canonical_codes(lengths)
    present = np.flatnonzero(lengths)
    words = ['{:0{}b}'.format(int(codes[s]), int(lengths[s])) for s in present]
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    if len(values):  # Huffman is optimal: never worse than a fixed-width code
        assert nbits <= len(values) * max(1, int(np.ceil(np.log2(max(len(present), 1)))))


def test_huffman_length_limit_and_bitpack():
    counts = (2 ** np.arange(30)).astype(np.int64)  # Fibonacci-like skew -> deep tree
    symbols_ = np.repeat(np.arange(30), np.minimum(counts, 5000))
    lengths = huffman_lengths(symbols_, 30, max_len=8)
    assert lengths.max() <= 8
    data, _ = huffman_encode(symbols_, lengths)
    np.testing.assert_array_equal(huffman_decode(data, len(symbols_), lengths), symbols_)
    v = np.random.RandomState(0).randint(0, 32, 1001)
    packed = pack_bits(v, 5)
    assert len(packed) == (1001 * 5 + 7) // 8
    np.testing.assert_array_equal(unpack_bits(packed, 5, 1001), v)
    with pytest.raises(ValueError, match='values must be in 0..31'):
        pack_bits([32], 5)


def test_gap_encoding_fillers():
    positions = np.array([0, 3, 40, 41, 200])
    gaps, real = sparse_entries(positions, 3)  # max gap 7, fillers every 8
    assert gaps.max() <= 7
    np.testing.assert_array_equal(sparse_positions(gaps)[real], positions)
    assert len(gaps) - len(positions) == 4 + 19  # (36 // 8) + (158 // 8)


def quantised_model(name='lenet5', seed=0, density=0.2):
    sym = symbols.get_symbol(name)
    shapes, _, _ = sym.infer_shape(data=(1, 1, 28, 28))
    rng = np.random.RandomState(seed)
    args = {}
    for k, s in zip(sym.list_arguments(), shapes):
        if k in ('data', 'softmax_label'):
            continue
        v = (rng.randn(*s) * 0.1).astype(np.float32)
        if k.endswith('weight'):
            v[rng.rand(*s) > density] = 0
        args[k] = mx.nd.array(v)
    plan = quantize_params(sym, args)
    for w, p in plan.items():
        args[w] = mx.nd.array(dequantize(p['codebook'], p['index']))
    return sym, args, plan


@pytest.mark.parametrize('huffman', [True, False])
def test_pack_unpack_exact(tmp_path, huffman):
    sym, args, plan = quantised_model()
    path = str(tmp_path / 'm.mxc')
    info, lossy = pack(path, sym, args, {}, huffman=huffman)
    assert lossy == []
    sym2, args2, aux2 = unpack(path)
    assert sym2.tojson() == sym.tojson() and aux2 == {}
    assert set(args2) == set(args)
    for k in args:
        np.testing.assert_array_equal(args2[k].asnumpy(), args[k].asnumpy())
    assert info['total_bytes'] == os.path.getsize(path)
    assert info['param_bytes'] == info['total_bytes'] - info['graph_bytes']
    layer = info['layers']['lenet5_fc1_weight']
    assert layer['nonzeros'] == int((args['lenet5_fc1_weight'].asnumpy() != 0).sum())
    assert layer['bits'] == 5 and layer['gap_bits'] == 5
    assert layer['theoretical_q_fraction'] == 5 / 32
    parts = sum(layer[c] for c in ('codebook', 'values', 'indices', 'gaps', 'huffman_tables',
                                   'layer_header'))
    assert parts == layer['total']
    total = (info['header_bytes'] + info['toc_bytes'] + info['graph_bytes']
             + info['dense_bytes'] + sum(l['total'] for l in info['layers'].values()))
    assert total == info['total_bytes']


def test_float_storage_is_lossless_and_plan_matches(tmp_path):
    sym, args, plan = quantised_model('lenet300', density=0.1)
    raw = dict(args)
    raw['lenet300_fc1_weight'] = mx.nd.array(np.random.RandomState(5).randn(300, 784) *
                                             (np.random.RandomState(6).rand(300, 784) < 0.05))
    blob, _ = encode_model(sym, raw, {}, storage='float')
    _, back, _ = decode_model(blob)
    np.testing.assert_array_equal(back['lenet300_fc1_weight'].asnumpy(),
                                  raw['lenet300_fc1_weight'].asnumpy().astype(np.float32))
    blob_plan, _ = encode_model(sym, args, {}, plan=plan)
    _, back, _ = decode_model(blob_plan)
    for k in args:
        np.testing.assert_array_equal(back[k].asnumpy(), args[k].asnumpy())


def test_dense_float16_halves_the_dense_params_and_restores_float32():
    sym, args, plan = quantised_model()
    biases = sorted(k for k in args if k.endswith('bias'))
    args['lenet5_fc2_bias'] = mx.nd.array(np.r_[np.float32(7e4), np.zeros(9, np.float32)])
    full, _ = encode_model(sym, args, {}, plan=plan)
    half, _ = encode_model(sym, args, {}, plan=plan, dense_float16=True)
    _, back, _ = decode_model(half)
    for k in args:
        value = args[k].asnumpy()
        assert back[k].dtype == np.float32
        if k in biases and k != 'lenet5_fc2_bias':
            np.testing.assert_array_equal(back[k].asnumpy(),
                                          value.astype(np.float16).astype(np.float32))
            assert np.abs(back[k].asnumpy() - value).max() <= 2.0 ** -11 * np.abs(value).max()
        else:   # weights (codebooks) exact; 7e4 overflows float16: that bias stays float32
            np.testing.assert_array_equal(back[k].asnumpy(), value)
    halved = sum(args[k].size for k in biases if k != 'lenet5_fc2_bias')
    assert len(full) - len(half) == 2 * halved
    info_full, info_half = container_info(full), container_info(half)
    assert info_full['dense']['lenet5_fc1_bias'] - info_half['dense']['lenet5_fc1_bias'] == 1000
    # stored with dtype code 4 (float16 bytes, a float32 param)
    entry = half.index(b'lenet5_conv1_bias') + len(b'lenet5_conv1_bias')
    assert half[entry] == 4


def test_unquantised_layers_auto_or_never():
    sym, args, _ = quantised_model()
    args['lenet5_fc2_weight'] = mx.nd.array(np.random.RandomState(1).randn(10, 500))
    with pytest.raises(ValueError, match='layer lenet5_fc2 has 5000 distinct nonzero values'):
        encode_model(sym, args, {}, quantize='never')
    blob, lossy = encode_model(sym, args, {})
    assert lossy == ['lenet5_fc2']
    with pytest.raises(ValueError, match='lenet5_fc1: gap_bits: bits must be an integer in 1..16'):
        encode_model(sym, args, {}, gap_bits_fc=0)


def small_blob():
    sym = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.Variable('data'), num_hidden=3,
                                                     name='fc'), name='softmax')
    w = np.array([[0, 0.5, 0, -0.25], [0.5, 0, 0, 0], [0, 0, 1.0, 0]], np.float32)
    args = {'fc_weight': mx.nd.array(w), 'fc_bias': mx.nd.array([0.1, 0.2, 0.3])}
    return encode_model(sym, args, {}, fc_bits=2, gap_bits_fc=2)[0], args


def test_every_flipped_byte_and_truncation_detected():
    blob, args = small_blob()
    _, back, _ = decode_model(blob)
    np.testing.assert_array_equal(back['fc_weight'].asnumpy(), args['fc_weight'].asnumpy())
    sections = ('header', 'table of contents', "'graph'", "'w:fc_weight'", "'dense'",
                'not an .mxc file')
    for i in range(len(blob)):
        for flip in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= flip
            with pytest.raises(ContainerError) as err:
                decode_model(bytes(bad), 'x.mxc')
            assert any(s in str(err.value) for s in sections), str(err.value)
    for n in range(len(blob)):
        with pytest.raises(ContainerError, match='x.mxc'):
            decode_model(blob[:n], 'x.mxc')
    with pytest.raises(ContainerError, match='unexpected bytes'):
        decode_model(blob + b'\0', 'x.mxc')


def test_cli_pack_dense_float16_is_smaller_and_says_lossy(tmp_path, capsys):
    sym, args, _ = quantised_model()
    prefix = str(tmp_path / 'q')
    save_checkpoint(prefix, 0, sym, args, {})
    full, half = str(tmp_path / 'full.mxc'), str(tmp_path / 'half.mxc')
    assert cli.main(['pack', prefix, full]) == 0
    capsys.readouterr()
    assert cli.main(['pack', prefix, half, '--dense-float16']) == 0
    assert 'dense params (float16)' in capsys.readouterr().err
    biases = sum(v.size for k, v in args.items() if k.endswith('bias'))
    assert os.path.getsize(full) - os.path.getsize(half) == 2 * biases
    _, back, _ = unpack(half)
    np.testing.assert_array_equal(back['lenet5_fc1_bias'].asnumpy(), args[
        'lenet5_fc1_bias'].asnumpy().astype(np.float16).astype(np.float32))


def test_cli_pack_info_unpack_roundtrip(tmp_path, capsys):
    sym, args, _ = quantised_model()
    prefix = str(tmp_path / 'q')
    save_checkpoint(prefix, 0, sym, args, {})
    out = str(tmp_path / 'q.mxc')
    assert cli.main(['pack', prefix, out]) == 0
    assert cli.main(['info', out, '--json']) == 0
    info = json.loads(capsys.readouterr().out.split('\n', 1)[1])
    for key in ('total_bytes', 'graph_bytes', 'param_bytes', 'layers'):
        assert key in info
    assert info['layers']['lenet5_conv2_weight']['indices'] > 0
    assert cli.main(['unpack', out, '--output', str(tmp_path / 'r')]) == 0
    _, back, _ = load_checkpoint(str(tmp_path / 'r'), 0)
    for k in args:
        np.testing.assert_array_equal(back[k].asnumpy(), args[k].asnumpy())
    assert cli.main(['info', out]) == 0
    # bad input: clear errors, nothing written
    assert cli.main(['pack', prefix, str(tmp_path / 'x.mxc'), '--bits', 'lenet5_fc1=17']) == 2
    assert 'bits must be in 1..16' in capsys.readouterr().err
    assert not os.path.exists(str(tmp_path / 'x.mxc'))
    with open(out, 'r+b') as f:
        f.seek(-3, 2)
        f.write(b'\xff')
    assert cli.main(['unpack', out, '--output', str(tmp_path / 's')]) == 2
    assert "section" in capsys.readouterr().err
    assert not os.path.exists(str(tmp_path / 's-symbol.json'))
    assert read_info.__doc__


def test_auto_gap_bits_picks_the_smallest_and_roundtrips():
    sym, args, _ = quantised_model('lenet300', density=0.05)
    sizes = {g: len(encode_model(sym, args, {}, gap_bits_fc=g)[0]) for g in (3, 5, 8)}
    blob, _ = encode_model(sym, args, {}, gap_bits_fc='auto')
    assert len(blob) <= min(sizes.values())
    _, back, _ = decode_model(blob)
    for k in args:
        np.testing.assert_array_equal(back[k].asnumpy(), args[k].asnumpy())
    assert cli.build_parser().parse_args(['pack', 'a', 'b', '--gap-bits-fc', 'auto']
                                         ).gap_bits_fc == 'auto'


def _write_raw_checkpoint(prefix, sym, args):
    """A checkpoint written without save_checkpoint's checks (e.g. holding a NaN)."""
    sym.save(prefix + '-symbol.json')
    mx.nd.save(prefix + '-0000.params', {'arg:%s' % k: v for k, v in args.items()})


def test_pack_refuses_non_finite_weights_before_quantising(tmp_path, capsys, monkeypatch):
    sym, args, _ = quantised_model()
    for bad in (np.nan, np.inf):
        w = args['lenet5_fc1_weight'].asnumpy()
        w[3, 7] = bad
        broken = dict(args, lenet5_fc1_weight=mx.nd.array(w))
        with pytest.raises(ValueError, match=r'argument lenet5_fc1_weight \(layer lenet5_fc1\) '
                                             r'holds 1 non-finite value\(s\) \(NaN or inf\)'):
            encode_model(sym, broken, {})
    bias = dict(args, lenet5_fc2_bias=mx.nd.array([np.nan] * 10))
    with pytest.raises(ValueError, match=r'argument lenet5_fc2_bias holds 10 non-finite'):
        encode_model(sym, bias, {})
    _, _, plan = quantised_model()
    plan['lenet5_fc1_weight']['codebook'][1] = np.nan
    with pytest.raises(ValueError, match='codebook of lenet5_fc1_weight'):
        encode_model(sym, args, {}, plan=plan)
    # through the command: refused before any k-means, nothing written
    import mxcompress.deep_compression.container as container_module

    def no_kmeans(*a, **k):
        raise AssertionError('k-means ran on a NaN layer')
    monkeypatch.setattr(container_module, 'scalar_quantize', no_kmeans)
    prefix = str(tmp_path / 'nan')
    w = args['lenet5_fc1_weight'].asnumpy()
    w[0, 0] = np.nan
    _write_raw_checkpoint(prefix, sym, dict(args, lenet5_fc1_weight=mx.nd.array(w)))
    out = str(tmp_path / 'nan.mxc')
    assert cli.main(['pack', prefix, out]) == 2
    err = capsys.readouterr().err
    assert err.startswith('mxcompress pack: error: ') and err.count('\n') == 1, err
    assert 'lenet5_fc1_weight' in err and 'non-finite' in err, err
    assert not os.path.exists(out)


def test_pack_refuses_to_overwrite_its_input(tmp_path, capsys):
    sym, args, _ = quantised_model()
    prefix = str(tmp_path / 'm')
    save_checkpoint(prefix, 0, sym, args, {})
    before = {f: open(str(tmp_path / f), 'rb').read() for f in os.listdir(str(tmp_path))}
    os.symlink(prefix + '-0000.params', str(tmp_path / 'link.mxc'))
    os.mkdir(str(tmp_path / 'outdir'))
    bad = [prefix + '-0000.params', prefix + '-symbol.json', prefix + '-0000.params.sha256',
           prefix + '-0000.manifest.json', prefix + '-0003.params', str(tmp_path / 'link.mxc'),
           os.path.join(str(tmp_path), '..', os.path.basename(str(tmp_path)), 'm-0000.params'),
           str(tmp_path / 'outdir'), str(tmp_path / 'outdir') + '/']
    for output in bad:
        assert cli.main(['pack', prefix, output]) == 2, output
        err = capsys.readouterr().err
        assert err.startswith('mxcompress pack: error: ') and err.count('\n') == 1, err
        assert 'directory' in err or 'input' in err or 'overwrite' in err, err
    after = {f: open(str(tmp_path / f), 'rb').read() for f in before}
    assert after == before
    assert sorted(os.listdir(str(tmp_path / 'outdir'))) == []
    assert cli.main(['pack', prefix, str(tmp_path / 'm.mxc')]) == 0
    with pytest.raises(ContainerError, match='is a directory'):
        pack(str(tmp_path / 'outdir'), sym, args, {})


def test_unpack_checks_its_output_and_writes_nothing_on_a_bad_file(tmp_path, capsys):
    blob, args = small_blob()
    good = tmp_path / 'g.mxc'
    good.write_bytes(blob)
    assert cli.main(['unpack', str(good), '--output', str(tmp_path)]) == 2
    assert 'names a directory' in capsys.readouterr().err
    # a weight whose shape disagrees with the graph, CRCs valid: refused, nothing written
    import struct
    from mxcompress.deep_compression.container import _read_sections, _write_sections
    sections, _, _, version = _read_sections(blob)
    sections = [list(s) for s in sections]
    layer = bytearray(sections[1][1])
    struct.pack_into('<I', layer, 13, 4)                 # fc_weight (3, 4) -> (4, 4)
    sections[1][1] = bytes(layer)
    bad = tmp_path / 'bad.mxc'
    bad.write_bytes(_write_sections(sections, version)[0])
    out = tmp_path / 'out'
    out.mkdir()
    assert cli.main(['unpack', str(bad), '--output', str(out / 'm')]) == 2
    err = capsys.readouterr().err
    assert "section 'w:fc_weight': shape (4, 4), the graph needs (3, ?)" in err
    assert err.startswith('mxcompress unpack: error: %s:' % bad) and err.count('\n') == 1
    assert os.listdir(str(out)) == []


def test_format_versions_1_and_2_read_the_same_model():
    """Version 2 (written now) DEFLATE-codes the graph; version-1 files still read, and the
    two hold the same params byte for byte in every other section."""
    from mxcompress.deep_compression import container
    sym, args, _ = quantised_model('lenet300', density=0.1)
    v1, _ = encode_model(sym, args, {}, format_version=1)
    v2, _ = encode_model(sym, args, {})
    i1, i2 = container_info(v1), container_info(v2)
    assert (i1['format_version'], i2['format_version']) == (1, 2)
    assert i1['graph_bytes'] == len(sym.tojson()) == i1['graph_json_bytes']
    assert i2['graph_bytes'] < i1['graph_bytes'] / 4          # 2,223 -> ~350 bytes
    assert i2['layers'] == i1['layers'] and i2['dense_bytes'] == i1['dense_bytes']
    assert i1['param_bytes'] == i2['param_bytes']
    assert v1[:8] == v2[:8] == container.MAGIC
    for blob in (v1, v2):
        sym2, args2, _ = decode_model(blob)
        assert json.loads(sym2.tojson()) == json.loads(sym.tojson())
        for k in args:
            np.testing.assert_array_equal(args2[k].asnumpy(), args[k].asnumpy())
    with pytest.raises(ValueError, match='format_version must be one of 1, 2'):
        encode_model(sym, args, {}, format_version=3)


def test_version_2_graph_codec_is_bounded_and_checked(monkeypatch):
    import zlib
    from mxcompress.deep_compression import container
    from mxcompress.deep_compression.container import _read_sections, _write_sections
    sym, args, _ = quantised_model('lenet300', density=0.1)
    blob, _ = encode_model(sym, args, {})
    sections, _, _, version = _read_sections(blob)
    assert version == 2

    def with_graph(payload, version=2):
        out = [list(s) for s in sections]
        out[0][1] = payload
        return _write_sections(out, version)[0]

    graph = sections[0][1]
    text = zlib.decompress(graph[1:], -15)
    assert with_graph(b'\x00' + text) and decode_model(with_graph(b'\x00' + text))
    cases = {b'': 'empty', b'\x05' + graph[1:]: 'unknown codec 5',
             graph[:len(graph) // 2]: 'truncated DEFLATE stream',
             graph + b'xyz': '3 bytes after the end of the DEFLATE stream',
             b'\x01\xff\xff\xff': 'corrupt DEFLATE stream'}
    for payload, message in cases.items():
        with pytest.raises(ContainerError, match='x.mxc: section graph: ' + message):
            decode_model(with_graph(payload), 'x.mxc')
    monkeypatch.setattr(container, 'MAX_GRAPH_JSON_BYTES', len(text) - 1)
    with pytest.raises(ContainerError, match='inflates to more than %d bytes' % (len(text) - 1)):
        container_info(blob, 'x.mxc')
    # a version-1 file with a compressed graph is not JSON; version 3 is refused
    with pytest.raises(ContainerError, match='not JSON'):
        decode_model(with_graph(graph, 1), 'x.mxc')
    with pytest.raises(ContainerError, match='format version 3, this mxcompress reads '
                                             'versions 1, 2'):
        decode_model(with_graph(graph, 3), 'x.mxc')
