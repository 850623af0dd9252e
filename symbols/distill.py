"""The distillation graph: a student and a teacher in one ``mx.sym.Group``.

``get_symbol(data, class_labels, resnet_layer_num, Temperature, mimic_weight, num_classes=2)``
keeps its public names, signature and defaults, which users import (after Hinton, Vinyals and
Dean, "Distilling the Knowledge in a Neural Network", 2015)::

    student backbone -> Flatten -> FullyConnected 'fc_class_score' (z_s)
        -> SoftmaxOutput 'softmax_hard' (label: class_labels)
    teacher ResNet of depth resnet_layer_num -> logits z_t
        -> softmax(z_t / T) 'teacher_soft_labels' = q
    SoftmaxOutput 'softmax_soft' (data z_s / T, label q, grad_scale = mimic_weight)
    Group([softmax_hard, softmax_soft])   saved as 'group2-symbol.json'

The student and teacher builders are arguments (``student=``, ``teacher=``), defaulting to the
shallow CNN's feature extractor and :mod:`symbols.resnet`; the graph helpers (renaming,
logits and features of any classifier, inference mode) are in
:mod:`mxcompress.distillation.graph`.

Gradients. ``SoftmaxOutput`` with a probability label of the data's shape back-propagates
``grad_scale * (softmax(z_s / T) - q)`` into its data, so the student receives
``mimic_weight * (p_T - q) / T`` on its logits: the soft term's gradient shrinks like
``1 / T^2`` for large T (``p_T - q`` is itself O(1/T)). Hinton et al. multiply the soft term by
``T^2`` to keep its share of the gradient constant as T changes; ``t2_scaling=True`` does
that (``grad_scale = mimic_weight * T^2``), off by default.

The soft labels pass through ``BlockGrad`` (node ``teacher_soft_labels_blockgrad``). The soft
labels are *targets*: the student should move toward the teacher, never the teacher toward
the student. Besides, ``SoftmaxOutput`` never writes a gradient for its label input: without
the BlockGrad, the teacher branch back-propagates whatever the label-gradient buffer happens
to hold (on MXNet 1.9.1 we measured values around 1e23 reaching the teacher's softmax), so a
jointly trained teacher would be destroyed and a frozen one would still run a useless
backward pass (fixed parameters get no update, but gradients through its activations would
still be computed). With BlockGrad the teacher is a pure forward branch: when frozen it
costs one inference pass per batch, and in joint training it learns only from its own
hard-label head.

Two training modes: a frozen, pre-trained teacher (``joint=False``:
its Dropout layers are removed and its BatchNorm layers use their moving statistics, so the
soft labels are the teacher's inference outputs; its parameters go in ``fixed_param_names``),
and teacher and student trained together (``joint=True``: a third head
``SoftmaxOutput 'softmax_teacher'`` trains the teacher on the class labels).
"""
import mxnet as mx

from mxcompress.checkpoint import atomic_path
from mxcompress.distillation.graph import (HARD_LABEL, add_prefix, bind_data, features_of,
                                           inference_mode, logits_of, num_outputs, prefix_params,
                                           student_deploy_symbol, subgraph_params,
                                           teacher_param_names)
from mxcompress.distillation.losses import check_mimic_weight, check_temperature

__all__ = ['get_symbol', 'DEFAULT_SAVE_PATH', 'shallow_backbone', 'resnet_teacher',
           'network_student', 'network_teacher', 'checkpoint_teacher', 'logits_of', 'features_of',
           'add_prefix', 'prefix_params', 'inference_mode', 'student_symbol',
           'student_deploy_symbol',
           'subgraph_params', 'teacher_param_names', 'check_temperature', 'check_mimic_weight',
           'HARD_LABEL']

#: The file name of the saved group (relative: the current directory).
DEFAULT_SAVE_PATH = 'group2-symbol.json'


def shallow_backbone(data):
    """Default student backbone: the shallow CNN's two conv-relu-pool stages (16 x 7 x 7)."""
    import symbols
    logits = logits_of(symbols.get_symbol('shallow-cnn', name='student'))
    return bind_data(features_of(logits), data)


def resnet_teacher(data, net_depth, num_classes):
    """Default teacher: :func:`symbols.resnet.get_logits` named ``teacher_resnet``."""
    from .resnet import get_logits
    return get_logits(data, net_depth=net_depth, num_classes=num_classes, name='teacher_resnet')


def network_student(network, prefix='student_', **kwargs):
    """Student builder ``data -> features`` from a network of :func:`symbols.get_symbol`.

    The network's classifier is dropped (``fc_class_score`` replaces it), names get ``prefix``.
    """
    def build(data):
        import symbols
        sym = symbols.get_symbol(network, **kwargs)
        return bind_data(add_prefix(features_of(logits_of(sym)), prefix), data)
    build.network = network
    return build


def network_teacher(network, prefix='teacher_', **kwargs):
    """Teacher builder ``(data, net_depth, num_classes) -> logits`` from a network by name.

    ``net_depth`` is passed on only to the ``resnet`` network.
    """
    def build(data, net_depth, num_classes):
        import symbols
        extra = dict(kwargs, net_depth=net_depth) if network == 'resnet' else kwargs
        sym = symbols.get_symbol(network, num_classes=num_classes, **extra)
        return bind_data(add_prefix(logits_of(sym), prefix), data)
    build.network = network
    return build


def checkpoint_teacher(symbol, prefix='teacher_'):
    """Teacher builder from a trained classifier's symbol (e.g. a checkpoint's).

    Its parameters must be renamed with :func:`prefix_params` (same ``prefix``).
    ``net_depth`` and ``num_classes`` are ignored (the graph fixes them; :func:`get_symbol`
    checks the class count).
    """
    def build(data, net_depth, num_classes):
        return bind_data(add_prefix(logits_of(symbol), prefix), data)
    return build


def get_symbol(data, class_labels, resnet_layer_num, Temperature, mimic_weight, num_classes=2,
               student=None, teacher=None, t2_scaling=False, joint=False,
               save_path=DEFAULT_SAVE_PATH, data_shape=(1, 1, 28, 28)):
    """Build (and save) the teacher/student group.

    Parameters
    ----------
    data : mx.sym.Symbol or None
        Input images (N, C, H, W); None means the variable ``data``.
    class_labels : mx.sym.Symbol or None
        Class indices (N,); None means the variable ``softmax_hard_label``.
    resnet_layer_num : int
        Depth of the default ResNet teacher (``6n + 2``); passed to ``teacher``.
    Temperature : float
        T > 0; both logits are divided by it before the soft softmax.
    mimic_weight : float
        >= 0; ``grad_scale`` of ``softmax_soft`` (times T^2 with ``t2_scaling``).
    num_classes : int
        Outputs of ``fc_class_score``; the teacher must have as many (default 2).
    student : callable or None
        ``student(data) -> features``; default :func:`shallow_backbone`.
    teacher : callable or None
        ``teacher(data, net_depth, num_classes) -> logits``; default :func:`resnet_teacher`.
    t2_scaling : bool
        Multiply the soft term's gradient by T^2 (Hinton et al.); False by default.
    joint : bool
        False: the teacher is frozen (inference mode, see :func:`inference_mode`).
        True: add ``softmax_teacher`` so teacher and student train together.
    save_path : str or None
        Where the group is saved (atomically); ``'group2-symbol.json'`` in
        the current directory by default; None saves nothing.
    data_shape : tuple
        Input shape used to check the teacher's class count.

    Returns
    -------
    mx.sym.Symbol
        Group with outputs ``softmax_hard_output`` (N, num_classes), ``softmax_soft_output``
        (N, num_classes) and, when ``joint``, ``softmax_teacher_output``.

    Raises
    ------
    ValueError
        Temperature <= 0, mimic_weight < 0, num_classes < 1, or a teacher whose logits do
        not have ``num_classes`` outputs.
    """
    temperature = check_temperature(Temperature)
    weight = check_mimic_weight(mimic_weight)
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError('num_classes must be a positive integer, got %r' % (num_classes,))
    data = mx.sym.Variable('data') if data is None else data
    class_labels = mx.sym.Variable(HARD_LABEL) if class_labels is None else class_labels
    student = student or shallow_backbone
    teacher = teacher or resnet_teacher

    backbone = student(data)
    flatten = mx.symbol.Flatten(data=backbone, name='flatten')
    fc_class_score_s = mx.symbol.FullyConnected(data=flatten, num_hidden=int(num_classes),
                                                name='fc_class_score')
    softmax1 = mx.symbol.SoftmaxOutput(data=fc_class_score_s, label=class_labels,
                                       name='softmax_hard')

    fc_class_score_t = teacher(data, resnet_layer_num, int(num_classes))
    teacher_classes = num_outputs(fc_class_score_t, data_shape)
    if teacher_classes is not None and teacher_classes != num_classes:
        raise ValueError('teacher has %d classes but the student (num_classes) has %d; they '
                         'must be equal' % (teacher_classes, num_classes))
    if not joint:
        fc_class_score_t = bind_data(inference_mode(fc_class_score_t), data)

    s_input_for_softmax = fc_class_score_s / temperature
    t_input_for_softmax = fc_class_score_t / temperature
    t_soft_labels = mx.symbol.softmax(t_input_for_softmax, name='teacher_soft_labels')
    t_soft_labels = mx.symbol.BlockGrad(t_soft_labels, name='teacher_soft_labels_blockgrad')
    grad_scale = weight * temperature ** 2 if t2_scaling else weight
    softmax2 = mx.symbol.SoftmaxOutput(data=s_input_for_softmax, label=t_soft_labels,
                                       name='softmax_soft', grad_scale=grad_scale)
    heads = [softmax1, softmax2]
    if joint:
        heads.append(mx.symbol.SoftmaxOutput(data=fc_class_score_t, label=class_labels,
                                             name='softmax_teacher'))
    group = mx.symbol.Group(heads)
    if save_path:
        with atomic_path(save_path) as tmp:
            group.save(tmp)
    return group


def student_symbol(student, num_classes=10, data=None):
    """The student alone as built inside the group: ``student(data)`` -> Flatten ->
    ``fc_class_score`` -> ``SoftmaxOutput`` named ``softmax``.

    Train this to compare a student trained alone with the same network distilled
    (same layers, same names). For a gluoncv MobileNetV2 the 1x1 classifier convolution
    (no bias) becomes ``fc_class_score`` (with bias): ``num_classes`` more parameters.
    """
    data = mx.sym.Variable('data') if data is None else data
    flatten = mx.symbol.Flatten(data=student(data), name='flatten')
    logits = mx.symbol.FullyConnected(data=flatten, num_hidden=int(num_classes),
                                      name='fc_class_score')
    return mx.sym.SoftmaxOutput(logits, name='softmax')
