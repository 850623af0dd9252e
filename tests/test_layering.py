"""The package's layering, read from the source: every import of every module (imports inside
functions included) must go down the layers, and no group of modules may import each other
in a circle.

Layers, bottom up (a module may import its own unit and any lower layer):

0. shared infrastructure at the root of ``mxcompress`` (``logs``, ``argtypes``, ``checkpoint``,
   ``graph``, ``data``, ``sources`` (data formats), ``fit``, ``measure``, ``analysis``,
   ``distributed``, ``deploy``), ``reporting`` and ``ops`` (the C++ library);
1. the compression families: ``pruning``, ``lowrank``, ``quantization``, ``binary``,
   ``distillation`` -- each its own folder, none imports another;
2. ``deep_compression``: the pipeline over pruning and quantisation, and the ``.mxc`` format;
3. ``symbols``: the network builders (they use the library's blocks);
4. ``mxcompress.commands``: the runners, one per subcommand;
5. ``mxcompress.cli`` and ``mxcompress.__main__``.

So the library never imports ``symbols``, ``commands`` or ``cli``, and the ``.mxc`` format never
imports the pipeline that writes it.
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFRASTRUCTURE = ('logs', 'argtypes', 'checkpoint', 'graph', 'data', 'fit', 'measure', 'analysis',
                  'distributed', 'reporting', 'ops', 'deploy', 'sources', '__init__')
FAMILIES = ('pruning', 'lowrank', 'quantization', 'binary', 'distillation')
FORMAT_MODULES = ('mxcompress.deep_compression.container', 'mxcompress.deep_compression.validate',
                  'mxcompress.deep_compression.sparse_codec',
                  'mxcompress.deep_compression.huffman')


def _modules():
    """``{dotted module name: path}`` of every module of ``mxcompress`` and ``symbols``."""
    found = {}
    for package in ('mxcompress', 'symbols'):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if not name.endswith('.py'):
                    continue
                rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].split(os.sep)
                if rel[-1] == '__init__':
                    rel = rel[:-1]
                found['.'.join(rel)] = os.path.join(folder, name)
    return found


MODULES = _modules()


def _is_package(module):
    return MODULES[module].endswith('__init__.py')


def _imports(module):
    """Project modules imported anywhere in ``module`` (relative imports resolved)."""
    tree = ast.parse(open(MODULES[module]).read(), MODULES[module])
    base = module.split('.') if _is_package(module) else module.split('.')[:-1]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parent = '.'.join(base[:len(base) - node.level + 1]) if node.level else ''
            source = '.'.join(part for part in (parent, node.module or '') if part)
            names = [source + '.' + alias.name for alias in node.names] + [source]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition('.')[0]
            if name and name != module:
                targets.add(name)
    return targets


def unit_of(module):
    """``(layer, unit)`` of a module, see the module docstring."""
    parts = module.split('.')
    if parts[0] == 'symbols':
        return 3, 'symbols'
    head = parts[1] if len(parts) > 1 else '__init__'
    if head in ('cli', '__main__'):
        return 5, 'cli'
    if head == 'commands':
        return 4, 'commands'
    if head == 'deep_compression':
        return 2, head
    if head in FAMILIES:
        return 1, head
    if head in INFRASTRUCTURE:
        return 0, head
    raise AssertionError('module %s has no layer: add it to tests/test_layering.py' % module)


EDGES = {module: _imports(module) for module in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        unit_of(module)


@pytest.mark.parametrize('module', sorted(MODULES))
def test_imports_go_down(module):
    layer, unit = unit_of(module)
    for target in sorted(EDGES[module]):
        target_layer, target_unit = unit_of(target)
        if target_unit == unit:
            continue
        assert target_layer < layer or (layer == 0 and target_layer == 0), (
            '%s (layer %d, %s) imports %s (layer %d, %s): imports must go down the layers'
            % (module, layer, unit, target, target_layer, target_unit))


def test_format_never_imports_the_pipeline():
    for module in FORMAT_MODULES:
        assert 'mxcompress.deep_compression.pipeline' not in EDGES[module], module
        assert not any(unit_of(t)[1] == 'pruning' for t in EDGES[module]), module


def test_no_import_cycles():
    """Depth-first search over module -> module edges; a back edge is a cycle."""
    state, stack = {}, []

    def visit(module):
        state[module] = 'open'
        stack.append(module)
        for target in sorted(EDGES[module]):
            if _is_package(target) and module.startswith(target + '.'):
                continue  # a submodule naming its own package's submodule: resolved above
            if state.get(target) == 'open':
                cycle = stack[stack.index(target):] + [target]
                raise AssertionError('import cycle: ' + ' -> '.join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = 'done'

    for module in sorted(MODULES):
        if module not in state:
            visit(module)


def test_the_checker_sees_imports_inside_functions():
    """A hidden import in a function body counts like one at the top of the file."""
    assert 'mxcompress.ops.reference' in EDGES['mxcompress.ops.selfcheck']
