"""Fine-tuning a factorised model through :func:`mxcompress.fit.fit` (``Module.fit``)."""
from ..fit import fit, fit_options

__all__ = ['finetune']


def finetune(symbol, arg_params, aux_params, args, train_iter, val_iter=None,
             fixed_param_names=None, **fit_kwargs):
    """Train every param of ``symbol`` (factors included) from the given values.

    Parameters
    ----------
    symbol : mx.sym.Symbol
        The factorised training graph (with its loss head).
    arg_params, aux_params : dict
        Starting values; all params must be given (nothing is initialised at random).
    args : argparse.Namespace
        :func:`~mxcompress.fit.add_fit_args` options; ``num_epochs`` is the number of
        fine-tuning epochs. ``model_prefix`` / ``load_epoch`` are ignored (the caller saves).
    fixed_param_names : list of str or None
        Params kept frozen.

    Returns
    -------
    arg_params, aux_params : dict
    """
    args = fit_options(args, model_prefix=None, load_epoch=None)
    module = fit(args, symbol, train_iter, val_iter, arg_params=arg_params,
                 aux_params=aux_params, fixed_param_names=fixed_param_names,
                 allow_missing=False, **fit_kwargs)
    return module.get_params()
