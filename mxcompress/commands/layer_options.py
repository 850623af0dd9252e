"""Per-layer options of the commands: the ``LAYER=VALUE[,LAYER=VALUE...]`` syntax, one parser for
all of them (``--sparsity``, ``--bits``, ``--ranks``, ``--schemes``, ``--quality``), and the
index and gap widths of the commands that quantise or pack."""
import argparse

from ..quantization.scalar import MAX_BITS, MIN_BITS

__all__ = ['bits_type', 'gap_bits_type', 'add_bits_args', 'bits_overrides', 'parse_layer_values',
           'number_or_layer_values', 'check_layer_names']


def bits_type(text):
    """argparse type: an integer in 1..16."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('bits must be an integer, got %r' % text) from None
    if not MIN_BITS <= value <= MAX_BITS:
        raise argparse.ArgumentTypeError('bits must be in %d..%d, got %d'
                                         % (MIN_BITS, MAX_BITS, value))
    return value


def parse_layer_values(items, convert, what):
    """``['name=value', 'a=1,b=2']`` (or one such string) -> dict; ValueError naming the item.

    ``convert`` turns each value text into its value (``int``, ``float``, an argparse type);
    its error becomes ``WHAT LAYER: why``.
    """
    if isinstance(items, str):
        items = [items]
    out = {}
    for item in items or []:
        for part in str(item).split(','):
            if not part.strip():
                continue
            name, sep, value = part.partition('=')
            if not sep or not name.strip():
                raise ValueError('%s: expected NAME=VALUE[,NAME=VALUE...], got %r'
                                 % (what, part.strip()))
            try:
                out[name.strip()] = convert(value.strip())
            except (ValueError, argparse.ArgumentTypeError) as err:
                raise ValueError('%s %s: %s' % (what, name.strip(), err)) from None
    return out


def number_or_layer_values(text, what):
    """``'0.9'`` -> 0.9; ``'fc1=0.9,fc2=0.8'`` -> ``{'fc1': 0.9, 'fc2': 0.8}``; None -> None."""
    if text is None:
        return None
    text = str(text).strip()
    if '=' in text:
        return parse_layer_values(text, float, what)
    try:
        return float(text)
    except ValueError:
        raise ValueError('%s must be a number or layer=value,... (got %r)' % (what, text)) \
            from None


def check_layer_names(values, known, what):
    """Raise ValueError unless every layer named in ``values`` (a dict) is one of ``known``."""
    unknown = sorted(set(values or {}) - set(known))
    if unknown:
        raise ValueError('%s: unknown layer(s) %s; the layers of this model: %s'
                         % (what, ', '.join(unknown), ', '.join(known) or 'none'))
    return values


def bits_overrides(items):
    """``--bits LAYER=B`` values -> dict (checked 1..16)."""
    return parse_layer_values(items, bits_type, '--bits')


def gap_bits_type(text):
    """argparse type: an integer in 1..16 or ``auto``."""
    return 'auto' if text == 'auto' else bits_type(text)


def add_bits_args(parser):
    """``--conv-bits``, ``--fc-bits``, ``--bits``, ``--gap-bits-conv``, ``--gap-bits-fc``."""
    group = parser.add_argument_group('Bit widths (Han et al.: 8 conv / 5 fc)')
    group.add_argument('--conv-bits', type=bits_type, default=8,
                       help='codebook index bits of Convolution layers (k = 2^bits entries, '
                            'entry 0 = the pruned zero)')
    group.add_argument('--fc-bits', type=bits_type, default=5,
                       help='codebook index bits of FullyConnected layers')
    group.add_argument('--bits', action='append', metavar='LAYER=BITS',
                       help='per-layer override, e.g. lenet5_fc2=6 (repeat or comma-separate)')
    group.add_argument('--gap-bits-conv', type=gap_bits_type, default=8,
                       help='bits of the relative sparse index of Convolution layers (1..16, '
                            'or auto: the smallest file over 2..12 per layer)')
    group.add_argument('--gap-bits-fc', type=gap_bits_type, default=5,
                       help='bits of the relative sparse index of FullyConnected layers '
                            '(1..16 or auto)')
    return group
