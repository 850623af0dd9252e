"""BinaryConnect MLP (Courbariaux et al. 2015): binary-weight hidden layers, BatchNorm, ReLU.

784 - [BinaryConnectDense(h) - BatchNorm - ReLU] x L - fc (fp32 by default) - softmax. The paper's
MNIST network is 3 x 1024 hidden units (1.29 % test error, deterministic binarisation).
"""
import mxnet as mx

from mxcompress.binary.layers import BinaryConnectDense
from mxcompress.binary.quantizers import WEIGHT_MODES


def get_symbol(num_classes=10, hidden=(1024, 1024, 1024), mode='deterministic',
               binary_last=False, dropout=0.0, name='bc_mlp', **kwargs):
    """Build the BinaryConnect MLP.

    Parameters
    ----------
    num_classes : int
    hidden : sequence of int
        Hidden widths.
    mode : {'deterministic', 'stochastic'}
        Weight binarisation.
    binary_last : bool
        Binarise the output layer too (default: full precision).
    dropout : float
        Dropout after each hidden layer, in [0, 1).
    name : str
        Op-name prefix.

    Returns
    -------
    mx.sym.Symbol
        Input ``data`` (N, 1, 28, 28) or (N, 784) in [0, 1]; output ``softmax``.
    """
    if kwargs:
        raise TypeError('binaryconnect_mlp got unknown options %s' % sorted(kwargs))
    if mode not in WEIGHT_MODES:
        raise ValueError('mode must be one of %s, got %r' % (', '.join(WEIGHT_MODES), mode))
    if not hidden or any(int(h) < 1 for h in hidden):
        raise ValueError('hidden must be a non-empty list of positive widths, got %r' % (hidden,))
    if not 0.0 <= dropout < 1.0:
        raise ValueError('dropout must be in [0, 1), got %r' % (dropout,))
    x = mx.sym.Flatten(mx.sym.Variable('data'), name=name + '_flatten')
    for i, width in enumerate(hidden, start=1):
        x = BinaryConnectDense(int(width), use_bias=False, mode=mode,
                               prefix='%s_fc%d_' % (name, i))(x)
        x = mx.sym.BatchNorm(x, fix_gamma=False, momentum=0.9, eps=1e-5,
                             name='%s_bn%d' % (name, i))
        x = mx.sym.Activation(x, act_type='relu', name='%s_relu%d' % (name, i))
        if dropout:
            x = mx.sym.Dropout(x, p=dropout, name='%s_drop%d' % (name, i))
    last = '%s_fc%d' % (name, len(hidden) + 1)
    if binary_last:
        x = BinaryConnectDense(num_classes, mode=mode, prefix=last + '_')(x)
    else:
        x = mx.sym.FullyConnected(x, num_hidden=num_classes, name=last)
    return mx.sym.SoftmaxOutput(x, name='softmax')
