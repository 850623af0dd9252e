"""Binary LeNet-5: BWN (binary weights, float activations) or XNOR (binary weights and inputs).

conv1 5x5 (fp32) - maxpool 2 - [binary] conv2 5x5 - maxpool 2 - [binary] fc1 - fc2 (fp32), with
BatchNorm after every hidden layer (binary layers need it). The first convolution and the
last fully connected layer stay full precision by default (Rastegari et al. 2016 do the same).

- ``mode='bwn'``: conv2 / fc1 are :class:`~mxcompress.binary.layers.BWNConv2D` /
  ``BWNDense`` (alpha_o * sign(W)); activations are ReLU.
- ``mode='xnor'``: XNOR-Net's order BNorm -> BinActiv -> BinConv -> Pool: conv2 / fc1 are
  ``XNORConv2D`` / ``XNORDense``, which sign-binarise their BatchNorm-ed input; the last fc sees
  the float output of a BatchNorm and ReLU.
- ``mode='binaryconnect'``: sign(W) weights without alpha, ReLU activations.
"""
import mxnet as mx

from mxcompress.binary import layers

_LAYERS = {'bwn': (layers.BWNConv2D, layers.BWNDense),
           'xnor': (layers.XNORConv2D, layers.XNORDense),
           'binaryconnect': (layers.BinaryConnectConv2D, layers.BinaryConnectDense)}


def _bn(x, name):
    return mx.sym.BatchNorm(x, fix_gamma=False, momentum=0.9, eps=1e-5, name=name)


def get_symbol(num_classes=10, mode='bwn', conv_filters=(20, 50), fc_hidden=500,
               binary_first=False, binary_last=False, name=None, **kwargs):
    """Build a binary LeNet-5.

    Parameters
    ----------
    num_classes : int
    mode : {'bwn', 'xnor', 'binaryconnect'}
    conv_filters : pair of int
        Filters of conv1 and conv2.
    fc_hidden : int
        Width of fc1.
    binary_first, binary_last : bool
        Binarise conv1 / fc2 too (default: full precision).
    name : str or None
        Op-name prefix (default ``'<mode>_lenet5'``).

    Returns
    -------
    mx.sym.Symbol
        Input ``data`` (N, 1, 28, 28) in [0, 1]; output ``softmax`` (N, num_classes).
    """
    if kwargs:
        raise TypeError('binary_lenet5 got unknown options %s' % sorted(kwargs))
    if mode not in _LAYERS:
        raise ValueError('mode must be one of %s, got %r' % (', '.join(sorted(_LAYERS)), mode))
    conv_cls, dense_cls = _LAYERS[mode]
    # the first layer sees pixels in [0, 1]: never sign-binarise them (use BWN weights only)
    first_cls = layers.BWNConv2D if mode == 'xnor' else conv_cls
    name = name or '%s_lenet5' % mode
    xnor = mode == 'xnor'
    x = mx.sym.Variable('data')
    if binary_first:
        x = first_cls(conv_filters[0], 5, use_bias=True, prefix=name + '_conv1_')(x)
    else:
        x = mx.sym.Convolution(x, num_filter=conv_filters[0], kernel=(5, 5), name=name + '_conv1')
    x = mx.sym.Pooling(x, pool_type='max', kernel=(2, 2), stride=(2, 2), name=name + '_pool1')
    x = _bn(x, name + '_bn1')
    if not xnor:
        x = mx.sym.Activation(x, act_type='relu', name=name + '_relu1')
    x = conv_cls(conv_filters[1], 5, prefix=name + '_conv2_')(x)
    x = mx.sym.Pooling(x, pool_type='max', kernel=(2, 2), stride=(2, 2), name=name + '_pool2')
    x = _bn(x, name + '_bn2')
    if not xnor:
        x = mx.sym.Activation(x, act_type='relu', name=name + '_relu2')
    x = mx.sym.Flatten(x, name=name + '_flatten')
    x = dense_cls(fc_hidden, use_bias=False, prefix=name + '_fc1_')(x)
    x = _bn(x, name + '_bn3')
    x = mx.sym.Activation(x, act_type='relu', name=name + '_relu3')
    if binary_last:
        x = dense_cls(num_classes, prefix=name + '_fc2_')(x)
    else:
        x = mx.sym.FullyConnected(x, num_hidden=num_classes, name=name + '_fc2')
    return mx.sym.SoftmaxOutput(x, name='softmax')
