"""Symbol-API network builders, one network per module, each with ``get_symbol(num_classes, ...)``.

``get_symbol(name, ...)`` here looks a network up by name; an unknown name raises ``ValueError``
listing the known ones.
"""
import importlib

from .gluoncv_backbones import GLUONCV_MODELS
from .gluoncv_backbones import get_symbol as gluoncv_symbol

#: network name -> (module, fixed keyword arguments)
_LOCAL = {
    'lenet300': ('lenet300', {}),
    'lenet5': ('lenet5', {}),
    'mlp': ('mlp', {}),
    'kd-teacher': ('mlp', {'hidden': (1200, 1200), 'dropout': 0.5, 'input_dropout': 0.2}),
    'kd-student': ('mlp', {'hidden': (800, 800)}),
    'bnn-resnet': ('bnn_resnet', {}),
    'binaryconnect-mlp': ('binaryconnect_mlp', {}),
    'bwn-lenet5': ('binary_lenet5', {'mode': 'bwn'}),
    'xnor-lenet5': ('binary_lenet5', {'mode': 'xnor'}),
    'resnet': ('resnet', {}),
    'shallow-cnn': ('shallow_cnn', {}),
}


def known_networks():
    """Sorted list of every network name :func:`get_symbol` accepts."""
    return sorted(set(_LOCAL) | set(GLUONCV_MODELS))


def get_symbol(network, num_classes=10, **kwargs):
    """Build network ``network`` with ``num_classes`` outputs.

    Returns
    -------
    mx.sym.Symbol
        Input ``data`` (N, 1, 28, 28) in [0, 1]; first output ``softmax`` probabilities.

    Raises
    ------
    ValueError
        ``network`` is not a known network (the message lists them).
    """
    if network in _LOCAL:
        module, fixed = _LOCAL[network]
        builder = importlib.import_module('.' + module, __name__).get_symbol
        return builder(num_classes=num_classes, **dict(fixed, **kwargs))
    if network in GLUONCV_MODELS:
        return gluoncv_symbol(num_classes=num_classes, model=network, **kwargs)
    raise ValueError('unknown network %r; known networks: %s'
                     % (network, ', '.join(known_networks())))
