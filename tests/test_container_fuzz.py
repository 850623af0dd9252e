"""The .mxc decoder against hostile files: a crafted corpus (one file per class of bad input)
and a bounded, derandomised fuzz over structured mutations of valid files.

Every bad file must raise ContainerError naming the file and what is wrong -- never another
exception, a huge allocation (the decoder runs under an address-space limit) or a crash.
"""
import contextlib
import importlib.util
import json
import os
import resource
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mxcompress import cli
from mxcompress.deep_compression import container
from mxcompress.deep_compression.container import (ContainerError, container_info,
                                                   decode_budget, decode_model, read_info,
                                                   unpack)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, 'tests', 'data', 'mxc_corpus')
SCRIPT = os.path.join(ROOT, 'scripts', 'fuzz_container.py')

_spec = importlib.util.spec_from_file_location('fuzz_container', SCRIPT)
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

#: corpus file -> what its error must say
EXPECTED = {
    'code_length_32.mxc': r"section 'w:fc1_weight': index Huffman code length 32 exceeds the "
                          r"20-bit maximum",
    'dense_bad_dtype.mxc': r"section 'dense': param fc1_bias: unknown dtype code 9",
    'dense_huge.mxc': r"section 'dense': param fc1_bias: shape \(65536, 65536\) of float32 "
                      r"needs 17179869184 bytes, 0 remain",
    'dense_nan.mxc': r"section 'dense': param fc1_bias holds non-finite values",
    'duplicate_section.mxc': r"section 'w:fc1_weight' appears twice",
    'entries_4g.mxc': r"section 'w:fc1_weight': 4294967295 entries declared for a weight of "
                      r"shape \(8, 12\) \(96 positions\)",
    'entries_vs_payload.mxc': r"section 'w:fc1_weight': index stream has 11 bytes, 96 values "
                              r"of 3 bits take 36",
    'float_values_short.mxc': r"section 'w:fc1_weight': 35 values for 36 entries",
    'graph_bad_codec.mxc': r"section graph: unknown codec 7",
    'graph_bad_input.mxc': r"section graph: node 3 'fc1' reads \[99, 0, 0\]",
    'graph_bad_output.mxc': r"section graph: softmax reads output 15 of node 'fc2', which "
                            r"has 1",
    'graph_not_json.mxc': r"section graph: unreadable symbol \(not JSON",
    'huffman_table_4g.mxc': r"section 'w:fc1_weight': index Huffman table has 4294967295 code "
                            r"lengths, the 3-bit alphabet has 8 symbols",
    'huge_weight.mxc': r"the weights declare 2147483648 elements \(largest: section "
                       r"'w:fc_weight', shape \(65536, 32768\)\), more than the 16777216",
    'huge_weight_vs_graph.mxc': r"section 'w:fc1_weight': shape \(65536, 32768\), the graph "
                                r"needs \(8, \?\)",
    'index_out_of_range.mxc': r"section 'w:fc1_weight': codebook index 5 out of range 0..1",
    'missing_weight.mxc': r"the graph needs params the file does not hold: fc2_weight",
    'nan_codebook.mxc': r"section 'w:fc1_weight': codebook holds non-finite values",
    'position_overflow.mxc': r"section 'w:fc1_weight': sparse position 95 beyond the weight "
                             r"size 40",
    'section_count_4g.mxc': r"the header declares 4294967295 sections, a 94-byte table of "
                            r"contents holds at most 6",
    'section_length_huge.mxc': r"section 1 'w:fc1_weight' truncated \(246 of "
                               r"18446744073709551615 bytes\)",
    'trailing_bytes.mxc': r"16 unexpected bytes after the last section",
    'truncated.mxc': r"section 3 'dense' truncated \(71 of 78 bytes\)",
    'unknown_param.mxc': r"section 'dense': param bogus is not an argument \(other than its "
                         r"inputs\) of the graph",
    'wrong_shape.mxc': r"section 'w:fc2_weight': shape \(3, 9\), the graph needs \(3, 8\)",
    'zero_not_filler.mxc': r"section 'w:fc1_weight': entry 1 is zero but not a filler",
}


def _vm_bytes():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmSize:'):
                return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def address_space_limit(extra_bytes=1 << 30):
    """Cap this process's address space at what it holds now + ``extra_bytes`` (restored
    afterwards): a decoder that trusts a declared size gets a MemoryError, not the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_bytes() + extra_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_corpus_is_complete():
    files = sorted(f for f in os.listdir(CORPUS) if f.endswith('.mxc'))
    assert files == sorted(EXPECTED)
    assert all(os.path.getsize(os.path.join(CORPUS, f)) < 4096 for f in files)
    assert sorted(fuzz.corpus()) == files   # the generator still makes every class


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_corpus_file_is_refused(name):
    path = os.path.join(CORPUS, name)
    with address_space_limit():
        for read in (unpack, read_info):
            with pytest.raises(ContainerError, match=EXPECTED[name]) as err:
                read(path)
            assert str(err.value).startswith(path + ':'), str(err.value)
            assert '\n' not in str(err.value)


def test_corpus_through_the_cli(tmp_path, capsys):
    """unpack writes nothing and info prints one line; both exit 2."""
    for name in ('huge_weight.mxc', 'wrong_shape.mxc', 'graph_bad_output.mxc'):
        path = os.path.join(CORPUS, name)
        out = str(tmp_path / 'restored')
        assert cli.main(['unpack', path, '--output', out]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith('mxcompress unpack: error: %s:' % path) and '\n' not in err
        assert os.listdir(str(tmp_path)) == []
        assert cli.main(['info', '--json', path]) == 2
        captured = capsys.readouterr()
        assert captured.out == '' and captured.err.startswith('mxcompress info: error:')


def test_not_a_regular_file(tmp_path, capsys, monkeypatch):
    for path, message in (('/dev/zero', 'not a regular file'), (str(tmp_path), 'is a directory'),
                          (str(tmp_path / 'none.mxc'), 'cannot read')):
        with pytest.raises(ContainerError, match=message):
            read_info(path)
        assert cli.main(['info', path]) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and message in err
    fifo = str(tmp_path / 'pipe.mxc')
    os.mkfifo(fifo)
    with pytest.raises(ContainerError, match='not a regular file'):
        unpack(fifo)          # refused without blocking on the pipe
    empty = tmp_path / 'empty.mxc'
    empty.write_bytes(b'')
    with pytest.raises(ContainerError, match='truncated header'):
        unpack(str(empty))
    good = os.path.join(ROOT, 'benchmarks', 'models', 'lenet5.mxc')
    monkeypatch.setattr(container, 'MAX_FILE_BYTES', 1000)
    with pytest.raises(ContainerError, match=r'bytes, more than the 1000-byte limit'):
        read_info(good)


def test_declared_total_checked_before_reading_the_rest(tmp_path, monkeypatch):
    blob = fuzz.seed_blobs()['mlp-huffman']
    longer = tmp_path / 'longer.mxc'
    longer.write_bytes(blob + b'\0' * 5000)
    reads = []
    real_open = os.fdopen

    class Recorder:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def fileno(self):
            return self.handle.fileno()

        def read(self, n=-1):
            reads.append(n)
            return self.handle.read(n)

    monkeypatch.setattr(container.os, 'fdopen', lambda fd, mode: Recorder(real_open(fd, mode)))
    with pytest.raises(ContainerError, match='5000 unexpected bytes after the last section'):
        unpack(str(longer))
    assert len(reads) == 2 and sum(reads) < 1000   # header and table only, not the rest


def test_decode_budget(monkeypatch):
    assert decode_budget(1000) == container.MIN_DECODE_WEIGHTS
    assert decode_budget(1 << 20) == 256 << 20
    monkeypatch.setenv('MXCOMPRESS_MXC_MAX_WEIGHTS', '10')
    assert decode_budget(1000) == 10
    with pytest.raises(ContainerError, match='the weights declare 120 elements'):
        decode_model(fuzz.seed_blobs()['mlp-huffman'], 'x.mxc')


def test_committed_files_still_decode():
    for name in ('lenet300.mxc', 'lenet5.mxc'):
        path = os.path.join(ROOT, 'benchmarks', 'models', name)
        with address_space_limit():
            _, args, _ = unpack(path)
            info = read_info(path)
        assert set(info['layers']) < set(args)
        assert all(np.isfinite(v.asnumpy()).all() for v in args.values())


def _decode_both(blob):
    """Decode ``blob`` as unpack and info do; returns the params or None if refused."""
    result = None
    with address_space_limit():
        try:
            result = decode_model(blob, 'fuzz.mxc')
        except ContainerError as err:
            assert str(err).startswith('fuzz.mxc'), str(err)
        try:
            container_info(blob, 'fuzz.mxc')
        except ContainerError as err:
            assert str(err).startswith('fuzz.mxc'), str(err)
    return result


_SEEDS = {}


def _seeds():
    if not _SEEDS:
        _SEEDS.update(fuzz.seed_blobs())
    return _SEEDS


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_fuzz_structured_mutations(data):
    """Mutated valid files (CRCs recomputed) decode or raise ContainerError, nothing else."""
    seeds = _seeds()
    names = sorted(seeds)
    name = names[data.draw(st.integers(0, len(names) - 1), label='seed')]

    def draw(n):
        return data.draw(st.integers(0, n - 1)) if n > 1 else 0

    blob = fuzz.mutate(draw, seeds[name], [seeds[n] for n in names])
    result = _decode_both(blob)
    if result is not None:    # accepted: a checkpoint the graph can hold
        symbol, args, aux = result
        assert set(args) | set(aux) >= {n for n in symbol.list_arguments()
                                        if n != 'data' and not n.endswith('label')}


def test_fuzz_script_reports_no_crash(tmp_path):
    """The long-running fuzzer (worker process, memory cap, segfault-safe) for a few hundred
    executions: its JSON must report executions and no crash."""
    proc = subprocess.run([sys.executable, SCRIPT, '--examples', '300', '--seconds', '60',
                           '--seed', '1', '--crash-dir', str(tmp_path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, cwd=ROOT, timeout=300)
    result = json.loads(proc.stdout)
    assert result['executions'] >= 300 and result['crashes'] == 0, result
    assert proc.returncode == 0
