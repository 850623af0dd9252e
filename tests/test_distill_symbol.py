"""The document's teacher/student group: names, saving, forward values and gradients."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

import symbols
from symbols import distill as sd
from symbols.resnet import get_logits


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _mlp_group(temperature=4.0, weight=0.5, joint=False, t2=False, teacher='mlp', **kw):
    return sd.get_symbol(None, None, 8, temperature, weight, num_classes=10,
                         student=sd.network_student('mlp', hidden=(16,)),
                         teacher=sd.network_teacher(teacher, hidden=(12,), **kw),
                         joint=joint, t2_scaling=t2, save_path=None)


def _bind(group, n=5, seed=0, fixed=None):
    rng = np.random.RandomState(seed)
    mod = mx.mod.Module(group, data_names=['data'], label_names=[sd.HARD_LABEL],
                        fixed_param_names=fixed)
    mod.bind([('data', (n, 1, 28, 28))], [(sd.HARD_LABEL, (n,))], inputs_need_grad=False)
    mx.random.seed(seed)
    mod.init_params(mx.init.Uniform(0.3))
    batch = mx.io.DataBatch([mx.nd.array(rng.rand(n, 1, 28, 28))],
                            [mx.nd.array(rng.randint(0, 10, size=n))])
    return mod, batch


def _internal(group, name, mod, batch):
    """Value of an internal output computed with the module's params."""
    out = group.get_internals()[name]
    arg_params, aux_params = mod.get_params()
    ex = out.bind(mx.cpu(), dict(arg_params, data=batch.data[0]), aux_states=aux_params)
    return ex.forward(is_train=False)[0].asnumpy()


def test_document_signature_defaults_and_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, labels = mx.sym.Variable('data'), mx.sym.Variable('softmax_hard_label')
    group = sd.get_symbol(data, labels, 8, 3, 1.0)  # the document's call, num_classes=2
    assert group.list_outputs() == ['softmax_hard_output', 'softmax_soft_output']
    _, out_shapes, _ = group.infer_shape(data=(3, 1, 28, 28), softmax_hard_label=(3,))
    assert out_shapes == [(3, 2), (3, 2)]
    names = {n['name'] for n in json.loads(group.tojson())['nodes']}
    for name in ('fc_class_score', 'softmax_hard', 'softmax_soft', 'teacher_soft_labels',
                 'teacher_soft_labels_blockgrad', 'flatten'):
        assert name in names
    assert any(n.startswith('teacher_resnet_') for n in names)
    # saved where the document saves it, readable, same graph
    saved = tmp_path / 'group2-symbol.json'
    assert saved.is_file()
    assert mx.sym.load(str(saved)).tojson() == group.tojson()


def test_save_path_is_an_argument(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _mlp_group()
    assert os.listdir(tmp_path) == []  # save_path=None writes nothing
    target = tmp_path / 'sub' / 'g.json'
    sd.get_symbol(None, None, 8, 2.0, 1.0, num_classes=10, save_path=str(target))
    assert target.is_file() and not (tmp_path / 'group2-symbol.json').exists()


@pytest.mark.parametrize('t2', [False, True])
def test_grad_scale_is_the_mimic_weight(t2):
    group = _mlp_group(temperature=4.0, weight=0.5, t2=t2)
    soft = [n for n in json.loads(group.tojson())['nodes'] if n['name'] == 'softmax_soft'][0]
    assert float(soft['attrs']['grad_scale']) == pytest.approx(0.5 * (16.0 if t2 else 1.0))


def test_forward_outputs_are_the_hard_and_tempered_softmax():
    group = _mlp_group(temperature=4.0)
    mod, batch = _bind(group)
    mod.forward(batch, is_train=False)
    hard, soft = [o.asnumpy() for o in mod.get_outputs()]
    z_s = _internal(group, 'fc_class_score_output', mod, batch)
    np.testing.assert_allclose(hard, _softmax(z_s), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(soft, _softmax(z_s / 4.0), rtol=1e-5, atol=1e-6)
    z_t = _internal(group, 'teacher_mlp_fc2_output', mod, batch)
    q = _internal(group, 'teacher_soft_labels_output', mod, batch)
    np.testing.assert_allclose(q, _softmax(z_t / 4.0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('t2', [False, True])
def test_student_gradient_matches_hand_computed(t2):
    temperature, weight = 4.0, 0.5
    group = _mlp_group(temperature, weight, t2=t2)
    mod, batch = _bind(group)
    mod.forward(batch, is_train=True)
    mod.backward()
    z_s = _internal(group, 'fc_class_score_output', mod, batch)
    z_t = _internal(group, 'teacher_mlp_fc2_output', mod, batch)
    x = _internal(group, 'student_mlp_relu1_output', mod, batch)
    y = np.eye(10)[batch.label[0].asnumpy().astype(int)]
    scale = weight * (temperature ** 2 if t2 else 1.0)
    # SoftmaxOutput: d/dz_s = (p - y) + grad_scale * (softmax(z_s/T) - q) / T
    delta = (_softmax(z_s) - y) + scale * (_softmax(z_s / temperature)
                                           - _softmax(z_t / temperature)) / temperature
    grads = dict(zip(mod._exec_group.param_names, mod._exec_group.grad_arrays))
    np.testing.assert_allclose(grads['fc_class_score_weight'][0].asnumpy(), delta.T @ x,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads['fc_class_score_bias'][0].asnumpy(), delta.sum(0),
                               rtol=1e-4, atol=1e-5)
    # the frozen-mode teacher gets nothing through the soft labels (BlockGrad)
    for name in sd.teacher_param_names(group):
        assert not grads[name][0].asnumpy().any(), name


def test_joint_teacher_learns_from_its_own_head_only():
    grads = []
    for weight in (0.0, 5.0):
        group = _mlp_group(weight=weight, joint=True)
        assert group.list_outputs()[-1] == 'softmax_teacher_output'
        mod, batch = _bind(group)
        mod.forward(batch, is_train=True)
        mod.backward()
        named = dict(zip(mod._exec_group.param_names, mod._exec_group.grad_arrays))
        grads.append(named['teacher_mlp_fc1_weight'][0].asnumpy())
    assert np.abs(grads[0]).sum() > 0
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)  # mimic weight doesn't reach it


def test_frozen_teacher_runs_in_inference_mode():
    """Dropout removed and BatchNorm on moving statistics, although the module trains."""
    group = sd.get_symbol(None, None, 8, 2.0, 1.0, num_classes=10,
                          student=sd.network_student('mlp', hidden=(16,)),
                          teacher=sd.network_teacher('mlp', hidden=(12,), dropout=0.5),
                          save_path=None)
    ops = [n['op'] for n in json.loads(group.get_internals()['teacher_soft_labels_output']
                                       .tojson())['nodes']]
    assert 'Dropout' not in ops
    mod, batch = _bind(group)
    mod.forward(batch, is_train=True)
    first = mod.get_outputs()[1].asnumpy()
    mod.forward(batch, is_train=True)
    np.testing.assert_array_equal(first, mod.get_outputs()[1].asnumpy())
    resnet = sd.inference_mode(get_logits(net_depth=8, num_classes=10))
    bns = [n for n in json.loads(resnet.tojson())['nodes'] if n['op'] == 'BatchNorm']
    assert bns and all(n['attrs']['use_global_stats'] == 'True' for n in bns)


def test_student_deploy_symbol_is_a_standard_classifier():
    group = _mlp_group()
    student = sd.student_deploy_symbol(group)
    assert student.list_outputs() == ['softmax_output']
    assert student.list_arguments()[0] == 'data'
    assert not any(a.startswith('teacher_') for a in student.list_arguments())
    mod, batch = _bind(group)
    arg_params, aux_params = sd.subgraph_params(student, *mod.get_params())
    ex = student.bind(mx.cpu(), dict(arg_params, data=batch.data[0],
                                     softmax_label=mx.nd.zeros(5)))
    mod.forward(batch, is_train=False)
    np.testing.assert_allclose(ex.forward()[0].asnumpy(), mod.get_outputs()[0].asnumpy(),
                               rtol=1e-6)


@pytest.mark.parametrize('temperature', [0, -2.0, float('nan')])
def test_bad_temperature(temperature):
    with pytest.raises(ValueError, match='Temperature'):
        _mlp_group(temperature=temperature)


def test_bad_mimic_weight_and_class_mismatch():
    with pytest.raises(ValueError, match='mimic_weight'):
        _mlp_group(weight=-0.1)
    with pytest.raises(ValueError, match='teacher has 7 classes.*10'):
        sd.get_symbol(None, None, 8, 2.0, 1.0, num_classes=10, save_path=None,
                      teacher=lambda data, depth, n: get_logits(data, depth, 7, name='t'))


@pytest.mark.parametrize('student', ['kd-student', 'lenet5', 'shallow-cnn', 'mobilenetv2_0.25',
                                     'shufflenet_v2'])
def test_named_students_keep_their_backbone(student):
    """The distilled student has exactly the parameters of the network trained alone."""
    group = sd.get_symbol(None, None, 8, 2.0, 1.0, num_classes=10, save_path=None,
                          student=sd.network_student(student),
                          teacher=sd.network_teacher('resnet'))
    deploy = sd.student_deploy_symbol(group)

    def count(sym):
        shapes, _, aux = sym.infer_shape(data=(1, 1, 28, 28))
        return sum(int(np.prod(s)) for n, s in zip(sym.list_arguments(), shapes)
                   if n != 'data' and not n.endswith('label')) + sum(int(np.prod(s)) for s in aux)
    alone = sd.student_symbol(sd.network_student(student))
    assert count(deploy) == count(alone)
    assert len(deploy.list_arguments()) == len(alone.list_arguments())
    # the network's own classifier is replaced by fc_class_score (+ a bias if it had none)
    assert count(deploy) - count(symbols.get_symbol(student)) in (0, 10)


def test_resnet_depths():
    assert len(get_logits(net_depth=8).list_arguments()) < len(get_logits(net_depth=14)
                                                              .list_arguments())
    with pytest.raises(ValueError, match='6n \\+ 2'):
        get_logits(net_depth=10)
    sym = symbols.get_symbol('resnet', net_depth=8, num_classes=3)
    assert sym.infer_shape(data=(2, 1, 28, 28))[1] == [(2, 3)]
