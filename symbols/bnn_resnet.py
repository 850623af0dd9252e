"""Binary ResNets built from the binary ``residual_unit`` (BMXNet, Yang et al. 2017).

``residual_unit`` is the public builder, kept as users call it: BNorm -> BinActiv (``bnn.BatchNorm``),
binary 3x3 conv, BNorm -> BinActiv, binary 3x3 conv, plus the shortcut (the input itself, or
a binary 3x3 convolution of the first binarised activation when the shape changes; never a
1x1 convolution: binary 1x1 convolutions lose too much expressiveness).

``get_symbol`` stacks the units between a full-precision first convolution and a
full-precision last fully connected layer, as XNOR-Net (Rastegari et al. 2016) and Bi-Real Net
(Liu et al. 2018) keep them:

* ``num_layers = 6n + 2`` (8, 14, 20, ...): the CIFAR layout, three stages of ``n`` units on a
  3x3 stem (the MNIST models);
* ``num_layers`` 18 or 34: the ImageNet layout of He et al. (2016), four stages of (2, 2, 2, 2)
  or (3, 4, 6, 3) units of 64, 128, 256, 512 channels on a 7x7 / 2 stem and a 3x3 / 2 max
  pool (``image_shape='3,224,224'``, ``num_classes=1000``).

``num_bits=32`` builds the full-precision twin: the same topology with float convolutions and
BatchNorm -> ReLU where the binary net has BatchNorm -> sign (the pre-activation unit of He et
al. 2016b), the reference a binary network's speed-up is measured against.
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


#: units per stage of the ImageNet layouts (basic blocks, He et al. 2016)
IMAGENET_UNITS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
#: ``num_bits`` of the full-precision twin
FULL_PRECISION = 32


def float_residual_unit(data, num_filter, stride, dim_match, name):
    """The full-precision twin of :func:`residual_unit`: BatchNorm -> ReLU instead of
    BatchNorm -> sign, float 3x3 convolutions, the same shortcut (identity or a 3x3
    convolution of the first activation).

    Parameters
    ----------
    data : mx.sym.Symbol, (N, C, H, W)
    num_filter : int
    stride : pair of int
    dim_match : bool
        Identity shortcut (same shape in and out).
    name : str
        Prefix of the unit's layer names.

    Returns
    -------
    mx.sym.Symbol, (N, num_filter, H / stride, W / stride)
    """
    def bn_relu(x, suffix):
        x = mx.sym.BatchNorm(x, fix_gamma=False, momentum=0.9, eps=1e-5,
                             name=name + suffix + '_bn')
        return mx.sym.Activation(x, act_type='relu', name=name + suffix + '_relu')

    def conv(x, suffix, conv_stride):
        return mx.sym.Convolution(x, num_filter=num_filter, kernel=(3, 3), stride=conv_stride,
                                  pad=(1, 1), no_bias=True, name=name + suffix)

    act1 = bn_relu(data, 'act1')
    conv2 = conv(bn_relu(conv(act1, 'conv1', stride), 'act2'), 'conv2', (1, 1))
    shortcut = data if dim_match else conv(act1, 'shortcut', stride)
    return conv2 + shortcut


def _parse_shape(image_shape):
    if isinstance(image_shape, str):
        image_shape = [int(v) for v in image_shape.split(',') if v.strip()]
    shape = tuple(int(v) for v in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError('image_shape must be channels,height,width, got %r' % (image_shape,))
    return shape


def _stages(num_layers, filter_list):
    """``[(channels, units), ...]`` per stage, and whether the ImageNet stem is used."""
    if num_layers in IMAGENET_UNITS:
        filter_list = filter_list or (64, 128, 256, 512)
        if len(filter_list) != 4:
            raise ValueError('filter_list of a %d-layer ResNet must be 4 channel counts, got %r'
                             % (num_layers, filter_list))
        return list(zip(filter_list, IMAGENET_UNITS[num_layers])), True
    if num_layers < 8 or (num_layers - 2) % 6:
        raise ValueError('num_layers must be 6n + 2 with n >= 1 (8, 14, 20, ...: CIFAR layout) '
                         'or one of %s (ImageNet layout), got %r'
                         % (sorted(IMAGENET_UNITS), num_layers))
    filter_list = filter_list or (16, 32, 64)
    if len(filter_list) != 3:
        raise ValueError('filter_list must be 3 positive channel counts, got %r'
                         % (filter_list,))
    return [(f, (num_layers - 2) // 6) for f in filter_list], False


def get_symbol(num_classes=10, num_layers=8, image_shape='1,28,28', num_bits=1,
               filter_list=None, stem_pool=True, name='bnn_resnet', **kwargs):
    """Binary ResNet: full-precision conv, stages of residual units, full-precision fc.

    CIFAR layout (``num_layers = 6n + 2``): ``conv0`` (3x3, fp32) [-> 2x2 max pool when
    ``stem_pool``] -> stage 1 (``filter_list[0]``, stride 1) -> stage 2 (stride 2) -> stage 3
    (stride 2), ``n`` units each. ImageNet layout (``num_layers`` 18 / 34): ``conv0`` (7x7 / 2,
    fp32) -> BatchNorm -> ReLU -> 3x3 / 2 max pool -> four stages (stride 1, 2, 2, 2) of
    :data:`IMAGENET_UNITS` units. Both end in BatchNorm -> ReLU -> global average pool ->
    ``fc`` (fp32) -> softmax. Unit ``j`` of stage ``i`` is named ``stage{i}_unit{j}_*``.

    Parameters
    ----------
    num_classes : int
    num_layers : int
        6n + 2 (8, 14, 20, ...) or 18 / 34.
    image_shape : str or tuple
        ``'1,28,28'`` for MNIST, ``'3,224,224'`` for ImageNet; the stem takes
        ``image_shape[0]`` channels.
    num_bits : int
        Activation bits of every unit (1 = binary, the default; 2..4 uniform), or 32 for the
        full-precision twin (:func:`float_residual_unit`).
    filter_list : tuple of int or None
        Channels of the stages (3 for the CIFAR layout, default (16, 32, 64); 4 for the
        ImageNet one, default (64, 128, 256, 512)); the stem has ``filter_list[0]``.
    stem_pool : bool
        CIFAR layout: max-pool 2x2 after the stem (28x28 -> 14x14), so the units run on 14,
        7, 4 pixels.

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
    stages, imagenet = _stages(num_layers, tuple(filter_list) if filter_list else None)
    if min(int(f) for f, _ in stages) < 1:
        raise ValueError('filter_list must be positive channel counts, got %r' % (filter_list,))
    if num_bits != FULL_PRECISION:
        from mxcompress.binary.quantizers import check_num_bits
        try:
            check_num_bits(num_bits, where=name)
        except ValueError as err:
            raise ValueError('%s (or %d: the full-precision twin)' % (err, FULL_PRECISION)) \
                from None
    _parse_shape(image_shape)
    data = mx.sym.Variable('data')
    first = stages[0][0]
    if imagenet:
        body = mx.sym.Convolution(data, num_filter=first, kernel=(7, 7), stride=(2, 2),
                                  pad=(3, 3), no_bias=True, name=name + '_conv0')
        body = mx.sym.BatchNorm(body, fix_gamma=False, momentum=0.9, eps=1e-5,
                                name=name + '_bn0')
        body = mx.sym.Activation(body, act_type='relu', name=name + '_relu0')
        body = mx.sym.Pooling(body, pool_type='max', kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                              name=name + '_pool0')
    else:
        body = mx.sym.Convolution(data, num_filter=first, kernel=(3, 3), pad=(1, 1),
                                  no_bias=True, name=name + '_conv0')
        if stem_pool:
            body = mx.sym.Pooling(body, pool_type='max', kernel=(2, 2), stride=(2, 2),
                                  name=name + '_pool0')
    channels = first
    for i, (filters, units) in enumerate(stages):
        for j in range(units):
            stride = (1, 1) if i == 0 or j > 0 else (2, 2)
            dim_match = stride == (1, 1) and channels == filters
            prefix = '%s_stage%d_unit%d_' % (name, i + 1, j + 1)
            if num_bits == FULL_PRECISION:
                body = float_residual_unit(body, filters, stride, dim_match, prefix)
            else:
                with mx.name.Prefix(prefix):
                    body = residual_unit(body, filters, stride, dim_match, num_bits)
            channels = filters
    body = mx.sym.BatchNorm(body, fix_gamma=False, momentum=0.9, eps=1e-5, name=name + '_bn1')
    body = mx.sym.Activation(body, act_type='relu', name=name + '_relu1')
    body = mx.sym.Pooling(body, global_pool=True, pool_type='avg', kernel=(1, 1),
                          name=name + '_pool1')
    body = mx.sym.Flatten(body, name=name + '_flatten')
    body = mx.sym.FullyConnected(body, num_hidden=num_classes, name=name + '_fc')
    return mx.sym.SoftmaxOutput(body, name='softmax')
