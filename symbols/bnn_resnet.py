"""Binary ResNet for MNIST built from the binary ``residual_unit`` (BMXNet, Yang et al. 2017).

``residual_unit`` is the public builder, kept as users call it: BNorm -> BinActiv (``bnn.BatchNorm``),
binary 3x3 conv, BNorm -> BinActiv, binary 3x3 conv, plus the shortcut (the input itself, or
a binary 3x3 convolution of the first binarised activation when the shape changes; never a
1x1 convolution: binary 1x1 convolutions lose too much expressiveness).

``get_symbol`` stacks the units in three stages (CIFAR-style ResNet, ``num_layers = 6n + 2``)
between a full-precision first convolution and a full-precision last fully connected layer.
"""
import mxnet as mx

from . import bnn


def residual_unit(data, num_filter, stride, dim_match, num_bits=1):
    """残差块 Residual Block 定义: the binary residual unit (public signature, kept as is)."""
    bnAct1 = bnn.BatchNorm(data=data, num_bits=num_bits)
    conv1 = bnn.Convolution(data=bnAct1, num_filter=num_filter, kernel=(3, 3), stride=stride, pad=(1, 1))
    convBn1 = bnn.BatchNorm(data=conv1, num_bits=num_bits)
    conv2 = bnn.Convolution(data=convBn1, num_filter=num_filter, kernel=(3, 3), stride=(1, 1), pad=(1, 1))
    if dim_match:
        shortcut = data
    else:
        shortcut = bnn.Convolution(data=bnAct1, num_filter=num_filter, kernel=(3, 3), stride=stride, pad=(1, 1))
    return conv2 + shortcut


def _parse_shape(image_shape):
    if isinstance(image_shape, str):
        image_shape = [int(v) for v in image_shape.split(',') if v.strip()]
    shape = tuple(int(v) for v in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError('image_shape must be channels,height,width, got %r' % (image_shape,))
    return shape


def get_symbol(num_classes=10, num_layers=8, image_shape='1,28,28', num_bits=1,
               filter_list=(16, 32, 64), stem_pool=True, name='bnn_resnet', **kwargs):
    """Binary ResNet: full-precision conv, 3 stages of residual units, full-precision fc.

    Layout: ``conv0`` (3x3, fp32) [-> 2x2 max pool when ``stem_pool``] -> stage 1
    (``filter_list[0]``, stride 1) -> stage 2 (``filter_list[1]``, stride 2) -> stage 3
    (``filter_list[2]``, stride 2), each ``n = (num_layers - 2) / 6`` units -> BatchNorm ->
    ReLU -> global average pool -> ``fc`` (fp32) -> softmax. Unit ``j`` of stage ``i`` is
    named ``stage{i}_unit{j}_*``.

    Parameters
    ----------
    num_classes : int
    num_layers : int
        6n + 2 (8, 14, 20, ...).
    image_shape : str or tuple
        ``'1,28,28'`` for MNIST; the stem takes ``image_shape[0]`` channels.
    num_bits : int
        Activation bits of every unit (1 = binary, the default; 2..4 uniform).
    filter_list : tuple of 3 int
        Channels of the three stages (the stem has ``filter_list[0]``).
    stem_pool : bool
        Max-pool 2x2 after the stem (28x28 -> 14x14), so the units run on 14, 7, 4 pixels.

    Returns
    -------
    mx.sym.Symbol
        Input ``data`` (N, C, H, W) in [0, 1]; output ``softmax`` (N, num_classes).

    Raises
    ------
    ValueError
        Bad ``num_layers``, ``num_bits``, ``filter_list`` or ``image_shape``.
    """
    if kwargs:
        raise TypeError('bnn_resnet got unknown options %s' % sorted(kwargs))
    if num_layers < 8 or (num_layers - 2) % 6:
        raise ValueError('num_layers must be 6n + 2 with n >= 1 (8, 14, 20, ...), got %r'
                         % (num_layers,))
    if len(filter_list) != 3 or min(int(f) for f in filter_list) < 1:
        raise ValueError('filter_list must be 3 positive channel counts, got %r'
                         % (filter_list,))
    from mxcompress.binary.quantizers import check_num_bits
    check_num_bits(num_bits, where=name)
    _parse_shape(image_shape)
    units = (num_layers - 2) // 6
    data = mx.sym.Variable('data')
    body = mx.sym.Convolution(data, num_filter=filter_list[0], kernel=(3, 3), pad=(1, 1),
                              no_bias=True, name=name + '_conv0')
    if stem_pool:
        body = mx.sym.Pooling(body, pool_type='max', kernel=(2, 2), stride=(2, 2),
                              name=name + '_pool0')
    channels = filter_list[0]
    for i, filters in enumerate(filter_list):
        for j in range(units):
            stride = (1, 1) if i == 0 or j > 0 else (2, 2)
            dim_match = stride == (1, 1) and channels == filters
            with mx.name.Prefix('%s_stage%d_unit%d_' % (name, i + 1, j + 1)):
                body = residual_unit(body, filters, stride, dim_match, num_bits)
            channels = filters
    body = mx.sym.BatchNorm(body, fix_gamma=False, momentum=0.9, eps=1e-5, name=name + '_bn1')
    body = mx.sym.Activation(body, act_type='relu', name=name + '_relu1')
    body = mx.sym.Pooling(body, global_pool=True, pool_type='avg', kernel=(1, 1),
                          name=name + '_pool1')
    body = mx.sym.Flatten(body, name=name + '_flatten')
    body = mx.sym.FullyConnected(body, num_hidden=num_classes, name=name + '_fc')
    return mx.sym.SoftmaxOutput(body, name='softmax')
