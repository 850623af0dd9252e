"""gluoncv networks adapted to MNIST (1 x 28 x 28) and exported to a Symbol.

The gluoncv blocks infer their first layer's input channels, so a single grey channel works
unchanged; all of them end in global average pooling, so 28 x 28 inputs reach a 1 x 1 map.
The block is hybridised, run once on a (1, 1, 28, 28) input and exported to a symbol; the
classifier's logits then feed a ``SoftmaxOutput`` named ``softmax``.
"""
import os
import tempfile

import mxnet as mx

#: name -> gluoncv model-zoo name
GLUONCV_MODELS = {
    'mobilenetv2_0.25': 'mobilenetv2_0.25',
    'mobilenetv2_0.5': 'mobilenetv2_0.5',
    'shufflenet_v2': 'shufflenet_v2',
    'cifar_resnet20_v1': 'cifar_resnet20_v1',
}


def get_logits(model, num_classes=10):
    """Return the logits symbol of a gluoncv model built for 1 x 28 x 28 inputs.

    Parameters
    ----------
    model : str
        One of :data:`GLUONCV_MODELS`.
    num_classes : int

    Returns
    -------
    mx.sym.Symbol
        Input ``data`` (N, 1, 28, 28); output logits (N, num_classes).
    """
    from gluoncv.model_zoo import get_model
    if model not in GLUONCV_MODELS:
        raise ValueError('unknown gluoncv backbone %r; known: %s' % (model, sorted(GLUONCV_MODELS)))
    net = get_model(GLUONCV_MODELS[model], classes=num_classes, pretrained=False)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    net(mx.nd.zeros((1, 1, 28, 28)))
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, 'net')
        net.export(prefix)
        return mx.sym.load(prefix + '-symbol.json')


def get_symbol(num_classes=10, model='mobilenetv2_0.25', **kwargs):
    """Classifier symbol (logits -> ``SoftmaxOutput`` named ``softmax``) of a gluoncv model."""
    if kwargs:
        raise TypeError('gluoncv backbone got unknown options %s' % sorted(kwargs))
    return mx.sym.SoftmaxOutput(get_logits(model, num_classes), name='softmax')
