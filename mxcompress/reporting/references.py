"""Published MNIST results that the benchmarks are held against.

Each entry: the paper, the network, the published test error (fraction) and, where the paper
gives one, the size or compression ratio. The report puts ours beside these.
"""

#: key -> published figure; ``ours`` names the benchmark record it is compared with
#: as ``(results file stem, record name)``.
PUBLISHED = [
    {'method': 'baseline', 'network': 'LeNet-300-100', 'paper': 'Han et al. 2015',
     'error': 0.0164, 'params': 266610, 'ours': ('baseline', 'lenet300')},
    {'method': 'baseline', 'network': 'LeNet-5', 'paper': 'Han et al. 2015',
     'error': 0.0080, 'params': 431080, 'ours': ('baseline', 'lenet5')},
    {'method': 'magnitude pruning', 'network': 'LeNet-300-100', 'paper': 'Han et al. 2015',
     'error': 0.0159, 'kept': 0.083, 'ours': ('pruning', 'lenet300-pruned')},
    {'method': 'magnitude pruning', 'network': 'LeNet-5', 'paper': 'Han et al. 2015',
     'error': 0.0077, 'kept': 0.083, 'ours': ('pruning', 'lenet5-pruned')},
    {'method': 'Deep Compression (P+Q+H)', 'network': 'LeNet-300-100',
     'paper': 'Han et al. 2016', 'error': 0.0158, 'ratio': 40,
     'ours': ('deep_compression', 'lenet300')},
    {'method': 'Deep Compression (P+Q+H)', 'network': 'LeNet-5', 'paper': 'Han et al. 2016',
     'error': 0.0074, 'ratio': 39, 'ours': ('deep_compression', 'lenet5')},
    {'method': 'BinaryConnect (det.)', 'network': 'MLP', 'paper': 'Courbariaux et al. 2015',
     'error': 0.0129, 'ours': ('binary', 'binaryconnect-mlp')},
    {'method': 'BNN', 'network': 'MLP 3x4096', 'paper': 'Courbariaux et al. 2016',
     'error': 0.0096, 'ours': ('binary', 'bnn-resnet')},
    {'method': 'distillation teacher', 'network': 'MLP 1200-1200', 'paper': 'Hinton et al. 2015',
     'error': 0.0067, 'ours': ('distillation', 'kd-teacher')},
    {'method': 'student alone', 'network': 'MLP 800-800', 'paper': 'Hinton et al. 2015',
     'error': 0.0146, 'ours': ('distillation', 'kd-student-alone')},
    {'method': 'student distilled, T=20', 'network': 'MLP 800-800',
     'paper': 'Hinton et al. 2015', 'error': 0.0074,
     'ours': ('distillation', 'kd-student-distilled')},
]
