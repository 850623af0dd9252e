"""matplotlib for figures written to files: a headless backend and atomic PNG writes.

Every plot of the toolkit (sensitivity curves, rank sweeps, Pareto fronts, speed-ups) is made
with :func:`pyplot` and written with :func:`save_figure`, so a crash never leaves a half-written
PNG and no display is ever needed.
"""
import os

from ..checkpoint import atomic_path

__all__ = ['pyplot', 'save_figure']


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, dpi=None):
    """Write ``fig`` as a PNG to ``path`` atomically (directories made), close it, return path.

    ``dpi`` None keeps the figure's own resolution.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    options = {'format': 'png'} if dpi is None else {'format': 'png', 'dpi': dpi}
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **options)
    pyplot().close(fig)
    return path
