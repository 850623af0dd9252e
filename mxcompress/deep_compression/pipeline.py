"""The Deep Compression pipeline (Han, Mao & Dally, ICLR 2016), end to end on a checkpoint.

1. **Prune** each layer to its target sparsity with masked fine-tuning (Han et al. 2015).
2. **Quantise**: k-means codebooks per layer (index 0 = the reserved zero), then centroid
   fine-tuning through ``take(codebook * codemask, index)`` with the index fixed
   (:mod:`mxcompress.quantization.codebook`); fold back to a standard checkpoint.
3. **Huffman**-code indices and gaps and write the ``.mxc`` file
   (:mod:`mxcompress.deep_compression.container`).

After each stage the test error is measured and the size of the model *as an actual file*
is computed: P = sparse float32 values + bit-packed gaps, P+Q = + bit-packed codebook
indices, P+Q+H = + Huffman coding. Ratios are ``4 * params / (file bytes - graph bytes)``.
The final error is measured on the weights read back from the written file.
"""
import logging
import time

from ..analysis import count_params
from ..checkpoint import atomic_path
from ..fit import fit, fit_options
from ..measure import classification_error
from ..pruning import prune_and_finetune
from ..quantization.codebook import codebook_rewrite, fold_codebooks, quantize_params
from .container import container_info, encode_model, unpack

__all__ = ['prune_stage', 'quantize_stage', 'stage_sizes', 'deep_compress']


def prune_stage(args, symbol, arg_params, aux_params, sparsity, train_iter, val_iter,
                steps, epochs_per_step, logger, method='level'):
    """Prune with masked fine-tuning (:func:`mxcompress.pruning.prune_and_finetune`).

    Parameters
    ----------
    sparsity : dict
        Layer name -> target sparsity, reached in ``steps`` prune -> fine-tune rounds
        (Han's iterative pruning, cubic ramp) of ``epochs_per_step`` epochs at ``args.lr``.
    method : {'level', 'agp'}
        See :func:`mxcompress.pruning.prune_and_finetune`.

    Returns ``(arg_params, aux_params, description)``.
    """
    step_args = fit_options(args, num_epochs=epochs_per_step * (steps if method == 'agp' else 1))
    _, params, aux = prune_and_finetune(
        symbol, arg_params, aux_params, step_args, train_iter, val_iter, method=method,
        sparsity=sparsity, layers=list(sparsity), steps=1 if method == 'agp' else steps,
        lr_scale=1.0, logger=logger)
    return params, aux, 'mxcompress.pruning.prune_and_finetune(method=%s, steps=%d)' % (
        method, steps)


def quantize_stage(args, symbol, arg_params, aux_params, train_iter, val_iter, conv_bits=8,
                   fc_bits=5, bits=None, init='linear', epochs=2, logger=None):
    """k-means quantise then fine-tune the centroids with Module.

    Returns
    -------
    arg_params : dict
        Standard params whose weights are ``codebook[index]`` exactly.
    aux_params : dict
    plan : dict
        weight -> ``codebook``, ``index``, ``bits`` (trained codebooks).
    before_finetune : dict
        Standard params right after k-means (for measuring the fine-tuning gain).
    """
    logger = logger or logging.getLogger('mxcompress')
    plan = quantize_params(symbol, arg_params, conv_bits=conv_bits, fc_bits=fc_bits, bits=bits,
                           init=init)
    cb_symbol, cb_params, fixed = codebook_rewrite(symbol, arg_params, plan)
    before = fold_codebooks(cb_params)
    if epochs > 0:
        ft_args = fit_options(args, num_epochs=epochs, load_epoch=None, model_prefix=None)
        logger.info('centroid fine-tuning: %d epochs, lr %g', epochs, ft_args.lr)
        train_iter.reset()
        module = fit(ft_args, cb_symbol, train_iter, val_iter, arg_params=cb_params,
                     aux_params=aux_params, fixed_param_names=fixed)
        cb_params, aux_params = module.get_params()
    return fold_codebooks(cb_params, plan), aux_params, plan, before


def stage_sizes(symbol, pruned, aux, quantized, plan, gap_bits_conv=8, gap_bits_fc=5):
    """File bytes (without the graph) of the P, P+Q and P+Q+H encodings.

    Returns
    -------
    dict
        stage -> ``{'param_bytes', 'total_bytes', 'ratio'}`` and the P+Q+H blob under ``blob``.
    """
    fp32 = 4 * (count_params(pruned) + count_params(aux or {}))
    out = {}
    for stage, kw, params in (('P', dict(storage='float', huffman=False), pruned),
                              ('P+Q', dict(huffman=False, plan=plan), quantized),
                              ('P+Q+H', dict(huffman=True, plan=plan), quantized)):
        blob, lossy = encode_model(symbol, params, aux, gap_bits_conv=gap_bits_conv,
                                   gap_bits_fc=gap_bits_fc, quantize='never', **kw)
        info = container_info(blob)
        out[stage] = {'param_bytes': info['param_bytes'], 'total_bytes': info['total_bytes'],
                      'graph_bytes': info['graph_bytes'],
                      'ratio': fp32 / info['param_bytes']}
        if stage == 'P+Q+H':
            out['blob'], out['info'] = blob, info
    out['fp32_bytes'] = fp32
    return out


def deep_compress(args, symbol, arg_params, aux_params, train_iter, val_iter, test_data,
                  sparsity, output, prune_steps=3, prune_epochs=2, quant_epochs=2,
                  quant_lr=None, conv_bits=8, fc_bits=5, bits=None, init='linear',
                  gap_bits_conv=8, gap_bits_fc=5, prune_method='level', logger=None,
                  echo=print):
    """Run prune -> quantise -> Huffman and write ``output`` (.mxc), atomically.

    Parameters
    ----------
    args : argparse.Namespace
        Fit options for the fine-tuning stages (``lr`` for pruning).
    test_data : (images (N, C, H, W), labels (N,)) or None
        Where errors are measured; None measures none (a rewrite with ``prune_epochs`` and
        ``quant_epochs`` 0 needs no data: errors are reported as None).
    sparsity : dict
        Layer name -> target sparsity.
    quant_lr : float or None
        Learning rate of centroid fine-tuning (default ``args.lr``).
    echo : callable
        Prints one line per stage.

    Returns
    -------
    dict
        Errors and ratios per stage, per-layer byte breakdown, timings.
    """
    logger = logger or logging.getLogger('mxcompress')
    report = {'stages': {}}

    def error(params, aux, graph=symbol):
        if test_data is None:
            return None
        return classification_error(graph, params, aux, *test_data)

    def pct(value):
        return 'not measured' if value is None else '%.2f%%' % (100 * value)

    base_err = error(arg_params, aux_params)
    report['stages']['baseline'] = {'test_error': base_err}
    echo('baseline: test error %s' % pct(base_err))
    t0 = time.time()
    pruned, aux, impl = prune_stage(args, symbol, arg_params, aux_params, sparsity, train_iter,
                                    val_iter, prune_steps, prune_epochs, logger,
                                    method=prune_method)
    report['prune_implementation'] = impl
    report['stages']['P'] = {'test_error': error(pruned, aux), 'seconds': time.time() - t0}
    echo('P      test error %s after pruning' % pct(report['stages']['P']['test_error']))
    q_args = fit_options(args, lr=args.lr if quant_lr is None else quant_lr)
    t0 = time.time()
    quantized, aux, plan, before = quantize_stage(q_args, symbol, pruned, aux, train_iter,
                                                  val_iter, conv_bits, fc_bits, bits, init,
                                                  quant_epochs, logger)
    report['stages']['P+Q'] = {'test_error': error(quantized, aux),
                               'test_error_before_centroid_finetune': error(before, aux),
                               'seconds': time.time() - t0}
    echo('P+Q    test error %s after centroid fine-tuning (%s right after k-means)'
         % (pct(report['stages']['P+Q']['test_error']),
            pct(report['stages']['P+Q']['test_error_before_centroid_finetune'])))
    sizes = stage_sizes(symbol, pruned, aux, quantized, plan, gap_bits_conv, gap_bits_fc)
    with atomic_path(output) as tmp:
        with open(tmp, 'wb') as f:
            f.write(sizes['blob'])
    sym2, arg2, aux2 = unpack(output)
    report['stages']['P+Q+H'] = {'test_error': error(arg2, aux2, sym2)}
    for stage in ('P', 'P+Q', 'P+Q+H'):
        report['stages'][stage].update({k: sizes[stage][k] for k in ('param_bytes',
                                                                     'total_bytes', 'ratio')})
        s = report['stages'][stage]
        echo('%-6s test error %s  params %8d bytes  ratio %6.1fx'
             % (stage, pct(s['test_error']), s['param_bytes'], s['ratio']))
    report['fp32_bytes'] = sizes['fp32_bytes']
    report['file'] = output
    report['info'] = sizes['info']
    report['sparsity'] = dict(sparsity)
    report['bits'] = {p['layer']: p['bits'] for p in plan.values()}
    return report
