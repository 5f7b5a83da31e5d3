"""A re-label as one cheap pass over the cached embeddings (issue 15: a correction on 10,000
images of 1280-d, every prediction updated within 20 ms).

* **One product**: the cosines of every embedding to every column needed (prototypes, the
  centre, …) come from one matrix product, numpy's BLAS, in blocks of rows small enough for
  OpenBLAS's small-matrix kernel, which reads the embeddings where they are instead of packing a
  copy first (:func:`cosine_to_prototypes`, :data:`SMALL_PRODUCT`).
* **Columns that recur are not multiplied again**: a correction changes one class's examples, so
  every other class's support prototype, and its N cosines, is the one of the last re-label
  (:class:`CosineCache`).
* **One thread** (:func:`one_thread`): on this project's loaded 2-core machine, the same
  correction took 82-89 ms with two BLAS and torch threads and 38 ms with one (10k × 1280-d,
  refined, same run): the many small operations after the product waited for the second
  thread's wake-ups, and OpenBLAS's workers, spinning after the product, took the core from them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from fewshot_gui.adapters.base import single_thread

SMALL_PRODUCT = 1_000_000
"""Rows × columns × dimensions of one product block: OpenBLAS (numpy's, x86-64) multiplies a
product up to this size with its small-matrix kernel, without packing. 9,907 × 1280 by 12
columns on one thread of this project's 2-core CPU: 5.9 ms in blocks of 64 rows, 9.2 ms in
blocks of 512 and 9.9 ms at once; by 21 columns 8.4 / 11.5 ms (same run). With another BLAS
the blocks cost a few microseconds each."""
MIN_BLOCK = 16
"""Fewest rows per block; with more columns than the small kernel takes for it, blocks of
:data:`LARGE_BLOCK` rows (each block packs the columns again)."""
LARGE_BLOCK = 1024


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch and numpy's BLAS on one thread (see the module docstring); BLAS is limited
    through ``threadpoolctl`` (a dependency of scikit-learn) when it is importable."""
    with single_thread(), _blas_limit():
        yield


_CONTROLLER: list[Any] = []  # the threadpoolctl controller, made once (it scans the libraries)


def _blas_limit() -> contextlib.AbstractContextManager[Any]:
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER.append(ThreadpoolController())
        except Exception:  # no threadpoolctl, or it cannot read this process's libraries
            _CONTROLLER.append(None)
    controller = _CONTROLLER[0]
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def cosine_to_prototypes(
    x: np.ndarray, inverse_norms: np.ndarray | None, protos: np.ndarray
) -> np.ndarray:
    """Cosines ``(N, C)`` of embeddings ``x`` (N, D) to unit ``protos`` (C, D): one product (any
    other row of ``protos`` gives its dot product with the unit ``x``).

    ``inverse_norms`` (N, 1): ``1 / |x|`` when known (the session caches them), else computed.
    The product is numpy's (BLAS): for these skinny shapes it took 15 ms where torch's one-thread
    product took 25 (9,907 × 1280 by 21 prototypes, this project's 2-core CPU, same run), and it
    is the bulk of a re-label.
    """
    q = np.asarray(x, np.float32)
    columns = np.ascontiguousarray(protos, np.float32).T  # (D, C)
    out = np.empty((len(q), columns.shape[1]), np.float32)
    block = SMALL_PRODUCT // max(columns.size, 1)
    block = block if block >= MIN_BLOCK else LARGE_BLOCK
    for start in range(0, len(q), block):
        np.matmul(q[start : start + block], columns, out=out[start : start + block])
    if inverse_norms is None:
        inv = 1.0 / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    else:
        inv = np.asarray(inverse_norms, np.float32).reshape(-1, 1)
    out *= inv
    return out


class CosineCache:
    """Cosines of one fixed set of embeddings to the prototypes of the last call, so that a
    prototype seen again costs no product. Bound to its embeddings (and their inverse norms):
    make a new one when they change. Holds ``(N, K)`` float32 (40 MB for 10 classes at 1M
    images)."""

    def __init__(self) -> None:
        self._keys: list[bytes] = []  # the prototypes of the columns of _sims, as bytes
        self._sims = np.zeros((0, 0), np.float32)  # (N, K)

    def cosines(
        self,
        x: np.ndarray,
        inverse_norms: np.ndarray | None,
        fresh: np.ndarray,
        protos: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cosines of ``x`` (N, D) to ``fresh`` (F, D), always computed, and to ``protos``
        (K, D): a row of ``protos`` equal to one of the last call's is taken from it, the others
        join ``fresh`` in one product. Returns ``((N, F), (N, K))``."""
        protos = np.ascontiguousarray(protos, np.float32)
        keys = [row.tobytes() for row in protos]
        known = {key: i for i, key in enumerate(self._keys)} if len(self._sims) == len(x) else {}
        hits = [j for j, key in enumerate(keys) if key in known]
        missing = [j for j, key in enumerate(keys) if key not in known]
        columns = np.concatenate([np.asarray(fresh, np.float32), protos[missing]])
        out = cosine_to_prototypes(x, inverse_norms, columns)
        f = len(fresh)
        sims = np.empty((len(out), len(keys)), np.float32)
        if hits:
            sims[:, hits] = self._sims[:, [known[keys[j]] for j in hits]]
        if missing:
            sims[:, missing] = out[:, f:]
        self._keys, self._sims = keys, sims
        return out[:, :f], sims


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """Softmax of each row of ``z`` (N, C) float32, in place (returns ``z``). With few classes
    the row maximum and sum run column by column: numpy's reductions along a short last axis
    took 0.45 and 0.2 ms on 9,907 × 10, the column loops 0.05 each."""
    if not z.size:
        return z
    z -= row_reduce(z, np.maximum)[:, None]
    np.exp(z, out=z)
    z /= row_reduce(z, np.add)[:, None]
    return z


COLUMN_LOOP = 16
"""Classes up to which :func:`softmax_rows` reduces column by column."""


def row_reduce(z: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """``ufunc.reduce(z, axis=1)`` of ``z`` (N, C), column by column for few columns."""
    if z.shape[1] > COLUMN_LOOP:
        return ufunc.reduce(z, axis=1)
    acc = z[:, 0].copy()
    for k in range(1, z.shape[1]):
        ufunc(acc, z[:, k], out=acc)
    return acc
