"""argparse types that check ranges, so a bad value is refused before any work.

Each returns the parsed value or raises ``argparse.ArgumentTypeError``; argparse then prints
``argument --NAME: <why>`` and exits with status 2.
"""
import argparse
import math

__all__ = ['positive_int', 'non_negative_int', 'finite_float', 'non_negative_float',
           'positive_float', 'int_in', 'float_in', 'epoch_list', 'chw_shape', 'split_size']


def _number(text, kind):
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError('must be %s, got %r'
                                         % ('an integer' if kind is int else 'a number', text)) \
            from None


def positive_int(text):
    """An integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError('must be a positive integer, got %s' % text)
    return value


def non_negative_int(text):
    """An integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError('must be an integer >= 0, got %s' % text)
    return value


def finite_float(text):
    """A finite number (no NaN, no infinity)."""
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError('must be a finite number, got %s' % text)
    return value


def non_negative_float(text):
    """A finite number >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError('must be >= 0, got %s' % text)
    return value


def positive_float(text):
    """A finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError('must be > 0, got %s' % text)
    return value


def int_in(low, high):
    """An integer in ``low..high`` (both included)."""
    def parse(text):
        value = _number(text, int)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError('must be in %d..%d, got %s' % (low, high, text))
        return value
    parse.__name__ = 'int_in_%d_%d' % (low, high)
    return parse


def float_in(low, high, high_open=False):
    """A finite number in ``[low, high]`` (``[low, high)`` with ``high_open``)."""
    def parse(text):
        value = finite_float(text)
        if not (low <= value < high if high_open else low <= value <= high):
            raise argparse.ArgumentTypeError('must be in [%g, %g%s, got %s'
                                             % (low, high, ')' if high_open else ']', text))
        return value
    parse.__name__ = 'float_in'
    return parse


def epoch_list(text):
    """Comma-separated increasing positive epochs (``'10,15'``); ``''`` for none."""
    if not str(text).strip():
        return ''
    try:
        steps = [int(s) for s in str(text).split(',') if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError('must be comma-separated epochs such as 10,15, got %r'
                                         % text) from None
    if not steps or steps[0] < 1 or sorted(set(steps)) != steps:
        raise argparse.ArgumentTypeError('must be increasing positive epochs such as 10,15, '
                                         'got %r' % text)
    return ','.join(str(s) for s in steps)


def chw_shape(text):
    """An image shape ``C,H,W`` with C 1 or 3 (e.g. ``3,32,32``)."""
    try:
        shape = tuple(int(v) for v in str(text).replace('x', ',').split(','))
    except ValueError:
        shape = ()
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
        raise argparse.ArgumentTypeError('expected C,H,W with C 1 or 3 and H, W >= 1 (e.g. '
                                         '3,32,32), got %r' % text)
    return shape


def split_size(text):
    """A count (``5000``) or a fraction in [0, 1) (``0.1``) of a set."""
    text = str(text).strip()
    if '.' in text or 'e' in text.lower():
        value = finite_float(text)
        if not 0 <= value < 1:
            raise argparse.ArgumentTypeError('a fraction must be in [0, 1), got %s' % text)
        return value
    return non_negative_int(text)
