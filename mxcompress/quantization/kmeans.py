"""k-means clustering for weight sharing: 1-D (scalar codebooks) and d-dimensional (product
quantisation).

Han, Mao & Dally, "Deep Compression" (ICLR 2016), section 3: the weights of a layer are
clustered into k groups minimising the within-cluster sum of squares

    argmin_C  sum_i sum_{w in c_i} |w - c_i|^2,

and every weight is replaced by its cluster's centroid. The initialisation matters: Han et al.
found *linear* initialisation (centroids evenly spaced over [min, max]) best, because it keeps
the few large weights that density-based or random initialisation under-represent.

Initialisations (:data:`INITS`): ``linear`` (evenly over [min, max]), ``density`` (evenly over
the CDF: the i-th centroid is the (i + 0.5)/k quantile), ``random`` (k distinct weights drawn
uniformly), ``kmeans++`` (Arthur & Vassilvitskii 2007: each next centroid drawn with probability
proportional to the squared distance to the nearest chosen one).
"""
import numpy as np

__all__ = ['INITS', 'init_centroids', 'kmeans_1d', 'kmeans', 'assign_1d']

INITS = ('linear', 'density', 'random', 'kmeans++')


def _check_init(init):
    if init not in INITS:
        raise ValueError('unknown k-means initialisation %r; valid: %s' % (init, ', '.join(INITS)))


def init_centroids(points, k, init='linear', rng=None):
    """Initial centroids for k-means.

    Parameters
    ----------
    points : numpy.ndarray, shape (n,) or (n, d)
    k : int
        Number of centroids, ``1 <= k <= n``.
    init : {'linear', 'density', 'random', 'kmeans++'}
        ``linear`` / ``density`` work per dimension (for d > 1 ``linear`` spans each
        coordinate's range, ``density`` takes per-coordinate quantiles of the sorted first
        principal direction); ``random`` and ``kmeans++`` pick data points.
    rng : numpy.random.RandomState or None

    Returns
    -------
    numpy.ndarray, float64, shape (k,) or (k, d)
    """
    _check_init(init)
    rng = rng or np.random.RandomState(0)
    pts = np.asarray(points, dtype=np.float64)
    flat = pts.ndim == 1
    x = pts[:, None] if flat else pts
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError('k must be in 1..%d (the number of points), got %d' % (n, k))
    if init == 'linear':
        lo, hi = x.min(axis=0), x.max(axis=0)
        t = np.linspace(0.0, 1.0, k)[:, None]
        c = lo + t * (hi - lo)
    elif init == 'density':
        if flat:
            c = np.quantile(x[:, 0], (np.arange(k) + 0.5) / k)[:, None]
        else:  # order points along their first principal direction, take quantile points
            centred = x - x.mean(axis=0)
            direction = np.linalg.svd(centred, full_matrices=False)[2][0]
            order = np.argsort(centred @ direction)
            c = x[order[((np.arange(k) + 0.5) / k * n).astype(int)]]
    elif init == 'random':
        c = x[rng.choice(n, k, replace=False)]
    else:  # kmeans++
        c = np.empty((k, x.shape[1]))
        c[0] = x[rng.randint(n)]
        dist = ((x - c[0]) ** 2).sum(axis=1)
        for i in range(1, k):
            total = dist.sum()
            j = rng.choice(n, p=dist / total) if total > 0 else rng.randint(n)
            c[i] = x[j]
            dist = np.minimum(dist, ((x - c[i]) ** 2).sum(axis=1))
    return c[:, 0] if flat else c


def assign_1d(values, centroids):
    """Index of the nearest centroid of each value (vectorised with a sorted binary search).

    Parameters
    ----------
    values : numpy.ndarray, shape (n,)
    centroids : numpy.ndarray, shape (k,)

    Returns
    -------
    numpy.ndarray, int64, shape (n,)
    """
    order = np.argsort(centroids, kind='stable')
    sorted_c = centroids[order]
    mids = (sorted_c[1:] + sorted_c[:-1]) / 2.0
    return order[np.searchsorted(mids, values, side='left')]


class _Sorted1D:
    """The values of a 1-D k-means sorted once, so each assignment is k binary searches.

    Assigning n values to the nearest of k sorted centroids is a search among the k - 1
    midpoints (:func:`assign_1d`); on the *sorted* values the k - 1 midpoints cut the array
    into k runs instead, found by ``searchsorted(sorted_values, mids)`` in O(k log n), and
    each run is one label. The labels in the original order follow by one gather. The
    result equals :func:`assign_1d` exactly (a value equal to a midpoint goes to the lower
    centroid in both), so every Lloyd iteration -- the sums accumulate in the original order,
    as ``np.bincount`` does -- gives the same centroids to the last bit.

    Memory (n values): the float32 values of a layer are sorted as float32 and searched with
    each float64 midpoint rounded *down* to float32 (for a float32 ``x``, ``x <= m`` exactly
    when ``x <= m'``, ``m'`` the largest float32 not above ``m``), so the sorted copy takes 4
    bytes per value; the ranks 4 (int32), the labels 1 (uint8, k <= 256).
    """

    def __init__(self, values, sort_values=None):
        """``values``: float64 (n,); ``sort_values``: the same values as float32 when they
        are exactly float32 (then sorted as such), or None."""
        self.values = values
        keys = values if sort_values is None else sort_values
        order = np.argsort(keys)       # equal values share a run: their order is immaterial
        self.sorted = keys[order]
        # the position of each value when sorted, filled block by block (no full arange)
        dtype = np.int32 if len(values) < 2 ** 31 else np.int64
        self.rank = np.empty(len(values), dtype)
        for lo in range(0, len(values), 1 << 20):
            part = order[lo:lo + (1 << 20)]
            self.rank[part] = np.arange(lo, lo + len(part), dtype=dtype)
        del order
        self._key = None

    def _search_keys(self, mids):
        if self.sorted.dtype != np.float32:
            return mids
        down = mids.astype(np.float32)
        above = down > mids
        down[above] = np.nextafter(down[above], np.float32(-np.inf))
        return down

    def assign(self, centroids):
        """``(labels, counts)`` of :func:`assign_1d` (counts per centroid index; the labels
        as uint8 or int32)."""
        k = len(centroids)
        order = np.argsort(centroids, kind='stable')
        sorted_c = centroids[order]
        mids = (sorted_c[1:] + sorted_c[:-1]) / 2.0
        bounds = np.searchsorted(self.sorted, self._search_keys(mids), side='right')
        runs = np.diff(np.concatenate([[0], bounds, [len(self.values)]]))
        key = (order.tobytes(), bounds.tobytes())
        if key != self._key:   # the same runs give the same labels: reuse them
            dtype = np.uint8 if k <= 256 else np.int32
            self._labels = None
            if k <= 4096:       # one fill per run (np.repeat copies element by element)
                by_rank = np.empty(len(self.values), dtype)
                edges = [0] + bounds.tolist() + [len(self.values)]
                for j, label in enumerate(order.tolist()):
                    by_rank[edges[j]:edges[j + 1]] = label
            else:
                by_rank = np.repeat(order.astype(dtype), runs)
            self._labels = by_rank[self.rank]    # narrow: int64 only when returned
            self._key = key
        counts = np.zeros(k, np.int64)
        counts[order] = runs
        return self._labels, counts


def _kmeans_1d(values, k, init='linear', iters=50, seed=0, tol=0.0):
    """:func:`kmeans_1d` with its labels as uint8 (k <= 256) or int32: 1/8 or 1/2 the memory
    of int64 for a large layer."""
    values = np.asarray(values)
    v = np.asarray(values, dtype=np.float64).ravel()
    exact32 = values.dtype == np.float32
    c = init_centroids(v, k, init, np.random.RandomState(seed)).astype(np.float64)
    data = _Sorted1D(v, values.ravel() if exact32 else None)
    labels, counts = data.assign(c)
    sums_key = None
    for _ in range(iters):
        if sums_key is not data._key:   # new labels: new sums (in the original order)
            sums = np.bincount(labels, weights=v, minlength=k)
            sums_key = data._key
        new = np.where(counts > 0, sums / np.maximum(counts, 1), c)
        moved = np.abs(new - c).max()
        c = new
        labels, counts = data.assign(c)
        if moved <= tol:
            break
    return c, labels


def kmeans_1d(values, k, init='linear', iters=50, seed=0, tol=0.0):
    """Lloyd's k-means on scalars.

    The values are sorted once; each assignment is then a binary search of the k - 1
    midpoints among them (see :class:`_Sorted1D`), with results identical to assigning every
    value by :func:`assign_1d`.

    Parameters
    ----------
    values : numpy.ndarray, shape (n,)
    k : int
        Clusters, ``1 <= k <= n``.
    init : str
        See :data:`INITS`.
    iters : int
        Maximum Lloyd iterations (assignment to the nearest centroid, centroid = mean).
    seed : int
    tol : float
        Stop when no centroid moves more than this.

    Returns
    -------
    centroids : numpy.ndarray, float64, shape (k,)
        An empty cluster keeps its previous centroid.
    labels : numpy.ndarray, int64, shape (n,)
    """
    c, labels = _kmeans_1d(values, k, init, iters, seed, tol)
    return c, labels.astype(np.int64)


def _nearest(x, c):
    # squared distances via |x|^2 - 2 x.c + |c|^2, (n, k)
    d = (x ** 2).sum(1)[:, None] - 2.0 * x @ c.T + (c ** 2).sum(1)[None, :]
    return d.argmin(axis=1)


def kmeans(points, k, init='kmeans++', iters=30, seed=0):
    """Lloyd's k-means on vectors (used per sub-space by product quantisation).

    Parameters
    ----------
    points : numpy.ndarray, shape (n, d)
    k : int
        ``1 <= k <= n``.
    init : str
        See :data:`INITS`.
    iters : int
    seed : int

    Returns
    -------
    centroids : numpy.ndarray, float64, shape (k, d)
    labels : numpy.ndarray, int64, shape (n,)
    """
    x = np.asarray(points, dtype=np.float64)
    c = init_centroids(x, k, init, np.random.RandomState(seed))
    labels = _nearest(x, c)
    for _ in range(iters):
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(c)
        np.add.at(sums, labels, x)
        new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], c)
        new_labels = _nearest(x, new)
        c = new
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return c, labels
