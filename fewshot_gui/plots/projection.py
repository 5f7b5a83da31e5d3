"""2-D projections of embeddings for the scatter plot: PCA (default), t-SNE, UMAP; which points to
draw of a million, and which lie in a lasso. No torch, no Qt.

Each projection returns ``(N, 2)`` float32 for ``(N, D)`` input; pure functions, run off the GUI
thread.
"""

from __future__ import annotations

import importlib.util

import numpy as np

FIT_ROWS = 20_000
"""PCA directions are fitted on at most this many random rows; every point is then projected."""
TSNE_LIMIT = 20_000
"""t-SNE above this many points takes minutes on a laptop: the plot falls back to PCA."""
UMAP_LIMIT = 200_000
"""UMAP above this many points: PCA likewise."""
PROJECT_ROWS = 65_536
"""Rows centred and projected per step (bounds the temporary copy of a million embeddings)."""


def available_methods() -> list[str]:
    methods = ["PCA"]
    if importlib.util.find_spec("sklearn") is not None:
        methods.append("t-SNE")
    if importlib.util.find_spec("umap") is not None:
        methods.append("UMAP")
    return methods


def top_components(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """``(D, k)`` leading principal directions of centred ``x (N, D)``.

    Exact (eigen-decomposition of the smaller Gram matrix) when min(N, D) is small, else a
    randomized subspace iteration: O(N·D·k) instead of O(D³), so 100,000 × 1,280 takes ~a second.
    """
    n, d = x.shape
    k = min(k, n, d)
    if min(n, d) <= 256:
        if d <= n:
            _, vecs = np.linalg.eigh((x.T @ x).astype(np.float64))
            return vecs[:, ::-1][:, :k].astype(np.float32)
        _, vecs = np.linalg.eigh((x @ x.T).astype(np.float64))
        top = x.T @ vecs[:, ::-1][:, :k].astype(np.float32)
        return top / np.maximum(np.linalg.norm(top, axis=0, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((d, k + 8)).astype(np.float32)
    for _ in range(3):
        q, _ = np.linalg.qr(x.T @ (x @ q))
    small = (x @ q).astype(np.float64)
    _, vecs = np.linalg.eigh(small.T @ small)
    return (q @ vecs[:, ::-1][:, :k].astype(np.float32)).astype(np.float32)


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Top-2 principal components ``(N, 2)`` float32 (fitted on at most :data:`FIT_ROWS` rows)."""
    x = np.asarray(vectors, np.float32)
    out = np.zeros((len(x), 2), np.float32)
    if len(x) < 2:
        return out
    mean = x.mean(axis=0, keepdims=True)
    fit = x if len(x) <= FIT_ROWS else x[np.random.default_rng(0).choice(len(x), FIT_ROWS, False)]
    top = top_components(fit - mean, 2)
    for start in range(0, len(x), PROJECT_ROWS):
        part = slice(start, start + PROJECT_ROWS)
        out[part, : top.shape[1]] = (x[part] - mean) @ top
    return out


def _reduce(x: np.ndarray, dims: int = 50) -> np.ndarray:
    if x.shape[1] <= dims or len(x) <= dims:
        return x
    centered = x - x.mean(axis=0, keepdims=True)
    return (centered @ top_components(centered, dims)).astype(np.float32)


def project_2d(vectors: np.ndarray, method: str = "PCA", seed: int = 0) -> tuple[np.ndarray, str]:
    """Project to 2-D; returns ``(coords (N, 2) float32, method actually used)``."""
    x = np.asarray(vectors, np.float32)
    n = len(x)
    if method == "t-SNE" and 5 <= n <= TSNE_LIMIT:
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (n - 1) // 3)))
        coords = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
            _reduce(x)
        )
        return coords.astype(np.float32), "t-SNE"
    if method == "UMAP" and 5 <= n <= UMAP_LIMIT and importlib.util.find_spec("umap") is not None:
        import umap

        coords = umap.UMAP(
            n_components=2, random_state=seed, n_neighbors=min(15, n - 1)
        ).fit_transform(_reduce(x))
        return np.asarray(coords, np.float32), "UMAP"
    return pca_2d(x), "PCA"


def align_axes(
    coords: np.ndarray, paths: list[str], previous: np.ndarray, previous_paths: list[str]
) -> np.ndarray:
    """``coords (N, 2)`` with each axis flipped where that makes it point the way it did in
    ``previous (M, 2)`` for the images both show (PCA's signs are arbitrary: a live view that
    re-projects as images arrive would otherwise mirror itself)."""
    m = min(len(paths), len(previous_paths))
    if paths[:m] == previous_paths[:m]:  # the folder grew (the usual case): no lookups
        a, b = coords[:m], previous[:m]
    else:
        where = {p: k for k, p in enumerate(previous_paths)}
        pairs = [(k, j) for k, p in enumerate(paths) if (j := where.get(p)) is not None]
        new_rows, old_rows = np.asarray(pairs, np.int64).reshape(-1, 2).T
        a, b = coords[new_rows], previous[old_rows]
    if len(a) < 2:
        return coords
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    signs = np.where((a * b).sum(axis=0) < 0, -1.0, 1.0).astype(coords.dtype)
    return coords * signs


def points_in_polygon(
    points: np.ndarray, polygon: np.ndarray, y_order: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask ``(N,)``: which ``points (N, 2)`` lie inside ``polygon (M, 2)`` (even-odd rule).

    Each edge is tested against only the points whose y lies in its span: a slice of the points
    sorted by y (``y_order``: :func:`y_order_of` of ``points``, computed here when not given), so a
    lasso over a million points costs a few passes over them, not one per edge.
    """
    points = np.asarray(points, np.float64)
    poly = np.asarray(polygon, np.float64)
    inside = np.zeros(len(points), bool)
    if len(poly) < 3 or len(points) == 0:
        return inside
    order = y_order_of(points) if y_order is None else y_order
    x, y = points[:, 0], points[:, 1]
    ys = y[order]
    xj, yj = poly[-1]
    for xi, yi in poly:
        # the edge crosses the horizontal line of the points with min(yi, yj) <= y < max(yi, yj)
        lo, hi = np.searchsorted(ys, sorted((yi, yj)), side="left")
        if hi > lo:
            rows = order[lo:hi]
            x_cross = (xj - xi) * (y[rows] - yi) / (yj - yi) + xi
            inside[rows] ^= x[rows] < x_cross
        xj, yj = xi, yi
    return inside


def y_order_of(points: np.ndarray) -> np.ndarray:
    """``(N,)`` indices sorting ``points (N, 2)`` by y (for :func:`points_in_polygon`)."""
    return np.argsort(np.asarray(points)[:, 1], kind="stable")


def points_in_rect(points: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Boolean mask of points inside the axis-aligned rectangle (corners in any order)."""
    lo_x, hi_x = sorted((x0, x1))
    lo_y, hi_y = sorted((y0, y1))
    p = np.asarray(points)
    return (p[:, 0] >= lo_x) & (p[:, 0] <= hi_x) & (p[:, 1] >= lo_y) & (p[:, 1] <= hi_y)


def representative(groups: np.ndarray, size: int, least: int = 50, seed: int = 0) -> np.ndarray:
    """Sorted indices of a stratified sample of at most about ``size`` of ``groups (N,)`` (small
    integers, e.g. each point's colour): each group in proportion to its count, at least ``least``
    of each (or all it has); a fixed seed, so the same groups give the same sample. O(N): no
    comparison sort."""
    groups = np.asarray(groups, np.int64)
    if len(groups) <= size:
        return np.arange(len(groups))
    codes = groups - groups.min()
    counts = np.bincount(codes)
    small = codes.astype(np.int16) if len(counts) < 2**15 else codes
    by_group = np.argsort(small, kind="stable")  # a radix sort for 16-bit codes
    ends = np.cumsum(counts)
    rng = np.random.default_rng(seed)
    picked = []
    for k in np.flatnonzero(counts).tolist():
        rows = by_group[ends[k] - counts[k] : ends[k]]
        want = min(len(rows), max(least, round(size * len(rows) / len(groups))))
        picked.append(rng.choice(rows, want, replace=False))
    present = int((counts > 0).sum())
    return np.sort(np.concatenate(picked))[: size + least * present]
