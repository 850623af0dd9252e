"""A small CIFAR-style residual network (He et al. 2016) in the Symbol API, sized for 1 x 28 x 28.

Depth ``6n + 2``: a 3x3 stem convolution, three stages of ``n`` basic blocks (two 3x3
convolutions with batch norm and an identity or projection shortcut) at ``width``,
``2 width`` and ``4 width`` filters on 28x28, 14x14 and 7x7 maps, global average pooling and
a fully connected classifier. It is the default teacher of the distillation graph
(:func:`symbols.distill.get_symbol`, which calls ``get_symbol(net_depth=..., num_class=...,
data=...)``).
"""
import mxnet as mx

__all__ = ['get_logits', 'get_symbol', 'valid_depth']


def valid_depth(net_depth):
    """Number of blocks per stage ``n`` for ``net_depth = 6n + 2``; ValueError otherwise."""
    depth = int(net_depth)
    if depth < 8 or (depth - 2) % 6:
        raise ValueError('resnet depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, ...), got %r'
                         % (net_depth,))
    return (depth - 2) // 6


def _conv_bn(x, filters, stride, name, relu=True, kernel=3):
    pad = (kernel // 2, kernel // 2)
    x = mx.sym.Convolution(x, num_filter=filters, kernel=(kernel, kernel), stride=(stride, stride),
                           pad=pad, no_bias=True, name=name + '_conv')
    x = mx.sym.BatchNorm(x, fix_gamma=False, momentum=0.9, eps=1e-5, name=name + '_bn')
    if relu:
        x = mx.sym.Activation(x, act_type='relu', name=name + '_relu')
    return x


def _basic_block(x, filters, stride, name):
    body = _conv_bn(x, filters, stride, name + '_a')
    body = _conv_bn(body, filters, 1, name + '_b', relu=False)
    shortcut = x
    if stride != 1:
        shortcut = _conv_bn(x, filters, stride, name + '_proj', relu=False, kernel=1)
    out = mx.sym.elemwise_add(body, shortcut, name=name + '_add')
    return mx.sym.Activation(out, act_type='relu', name=name + '_relu')


def get_logits(data=None, net_depth=20, num_classes=10, width=16, name='resnet'):
    """Logits of a ``net_depth``-layer CIFAR-style ResNet.

    Parameters
    ----------
    data : mx.sym.Symbol or None
        Input (N, C, H, W); default the variable ``data``.
    net_depth : int
        ``6n + 2`` (8, 14, 20, 32, 44, 56, ...).
    num_classes : int
    width : int
        Filters of the first stage (16 in He et al.).
    name : str
        Prefix of every op and parameter.

    Returns
    -------
    mx.sym.Symbol
        Logits (N, num_classes), the output of FullyConnected ``<name>_fc``.
    """
    blocks = valid_depth(net_depth)
    if int(num_classes) < 1 or int(width) < 1:
        raise ValueError('num_classes and width must be positive, got %r, %r'
                         % (num_classes, width))
    x = mx.sym.Variable('data') if data is None else data
    x = _conv_bn(x, width, 1, name + '_stem')
    for stage in range(3):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, width * 2 ** stage, stride,
                             '%s_stage%d_block%d' % (name, stage + 1, block + 1))
    x = mx.sym.Pooling(x, global_pool=True, pool_type='avg', kernel=(1, 1), name=name + '_pool')
    x = mx.sym.Flatten(x, name=name + '_flatten')
    return mx.sym.FullyConnected(x, num_hidden=int(num_classes), name=name + '_fc')


def get_symbol(num_classes=10, net_depth=20, width=16, name='resnet', data=None, num_class=None,
               **kwargs):
    """Classifier symbol: :func:`get_logits` -> ``SoftmaxOutput`` named ``softmax``.

    ``num_class`` is accepted as another spelling of ``num_classes`` (the distillation
    graph's call uses it).
    """
    if kwargs:
        raise TypeError('resnet got unknown options %s' % sorted(kwargs))
    if num_class is not None:
        num_classes = num_class
    logits = get_logits(data, net_depth, num_classes, width, name)
    return mx.sym.SoftmaxOutput(logits, name='softmax')
