"""Standard MXNet checkpoints, written atomically and checked on load.

A checkpoint is the usual pair ``PREFIX-symbol.json`` + ``PREFIX-NNNN.params`` (readable by
``mx.model.load_checkpoint``, ``mx.sym.load`` and ``gluon.SymbolBlock.imports``) plus a
``PREFIX-NNNN.params.sha256`` sidecar. Every file is written to a temporary name in the same
directory and renamed, so a crash never leaves a half-written checkpoint; on load the sidecar
(when present) detects a corrupt or truncated params file, and the params are checked against
the symbol's arguments and shapes.
"""
import contextlib
import hashlib
import json
import os
import tempfile

import mxnet as mx

__all__ = ['CheckpointError', 'atomic_path', 'save_checkpoint', 'load_checkpoint',
           'check_params_fit', 'sha256_file', 'params_path']


class CheckpointError(ValueError):
    """A missing, corrupt or inconsistent checkpoint."""


def params_path(prefix, epoch):
    """``PREFIX-NNNN.params``."""
    return '%s-%04d.params' % (prefix, epoch)


def sha256_file(path):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp',
                               dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(prefix, epoch, symbol, arg_params, aux_params):
    """Write ``PREFIX-symbol.json``, ``PREFIX-NNNN.params`` and its ``.sha256`` atomically.

    Parameters
    ----------
    prefix : str
    epoch : int
    symbol : mx.sym.Symbol or None
        None keeps an existing symbol file.
    arg_params, aux_params : dict of str -> mx.nd.NDArray
    """
    if symbol is not None:
        with atomic_path(prefix + '-symbol.json') as tmp:
            symbol.save(tmp)
    save = {'arg:%s' % k: v.as_in_context(mx.cpu()) for k, v in arg_params.items()}
    save.update({'aux:%s' % k: v.as_in_context(mx.cpu()) for k, v in (aux_params or {}).items()})
    target = params_path(prefix, epoch)
    with atomic_path(target) as tmp:
        mx.nd.save(tmp, save)
        digest = sha256_file(tmp)
        with atomic_path(target + '.sha256') as tmp_sum:
            with open(tmp_sum, 'w') as f:
                f.write('%s  %s\n' % (digest, os.path.basename(target)))


def _verify_checksum(path):
    sidecar = path + '.sha256'
    if not os.path.exists(sidecar):
        return
    with open(sidecar) as f:
        expected = f.read().split()[0]
    actual = sha256_file(path)
    if actual != expected:
        raise CheckpointError('%s: checksum mismatch (file is corrupt or truncated; expected '
                              'sha256 %s, got %s)' % (path, expected, actual))


def check_params_fit(symbol, arg_params, aux_params, data_shapes=None, where='checkpoint'):
    """Raise :class:`CheckpointError` unless the params fit the symbol.

    Every argument of ``symbol`` except its inputs (``data``, labels) must have a param, and
    with ``data_shapes`` (e.g. ``{'data': (1, 1, 28, 28)}``) every param's shape must equal the
    inferred one. Extra params are reported too.
    """
    inputs = set(data_shapes or {'data': None}) | {a for a in symbol.list_arguments()
                                                  if a.endswith('label')}
    missing = [a for a in symbol.list_arguments() if a not in inputs and a not in arg_params]
    missing += [a for a in symbol.list_auxiliary_states() if a not in aux_params]
    extra = [a for a in arg_params if a not in symbol.list_arguments()]
    extra += [a for a in aux_params if a not in symbol.list_auxiliary_states()]
    if missing or extra:
        raise CheckpointError('%s: params do not match the symbol (missing: %s; unexpected: %s)'
                              % (where, missing or 'none', extra or 'none'))
    if data_shapes:
        arg_shapes, _, aux_shapes = symbol.infer_shape_partial(**data_shapes)
        expected = dict(zip(symbol.list_arguments(), arg_shapes))
        expected.update(zip(symbol.list_auxiliary_states(), aux_shapes))
        for name, value in list(arg_params.items()) + list(aux_params.items()):
            want = tuple(expected.get(name) or ())
            if want and 0 not in want and tuple(value.shape) != want:
                raise CheckpointError('%s: param %s has shape %s, the symbol needs %s'
                                      % (where, name, tuple(value.shape), want))


def load_checkpoint(prefix, epoch=0, data_shapes=None):
    """Load ``(symbol, arg_params, aux_params)``, verifying checksum and fit.

    Parameters
    ----------
    prefix : str
    epoch : int
    data_shapes : dict or None
        Input shapes used to check param shapes, e.g. ``{'data': (1, 1, 28, 28)}``.

    Raises
    ------
    CheckpointError
        A file is missing, unreadable, fails its checksum, or the params don't fit the symbol.
    """
    sym_file, par_file = prefix + '-symbol.json', params_path(prefix, epoch)
    for path in (sym_file, par_file):
        if not os.path.isfile(path):
            raise CheckpointError('checkpoint file not found: %s' % path)
    _verify_checksum(par_file)
    try:
        symbol = mx.sym.load(sym_file)
    except (mx.base.MXNetError, json.JSONDecodeError, ValueError) as err:
        raise CheckpointError('%s: cannot read symbol (%s). If it uses the xnor_conv2d op, '
                              'call mxcompress.ops.load() first.' % (sym_file, err)) from err
    try:
        saved = mx.nd.load(par_file)
    except mx.base.MXNetError as err:
        raise CheckpointError('%s: cannot read params (%s)' % (par_file, err)) from err
    arg_params, aux_params = {}, {}
    for key, value in saved.items():
        kind, _, name = key.partition(':')
        if kind == 'arg':
            arg_params[name] = value
        elif kind == 'aux':
            aux_params[name] = value
        else:
            raise CheckpointError('%s: key %r is not arg:/aux:' % (par_file, key))
    check_params_fit(symbol, arg_params, aux_params, data_shapes, where=prefix)
    return symbol, arg_params, aux_params
