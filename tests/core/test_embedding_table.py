"""The session's embedding table: rows by path, views for consecutive rows, cached features."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot_gui.core.embedding_table import EmbeddingTable


class CountingNorms:
    """A feature function that records how many rows it computed."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.rows += len(x)
        return np.linalg.norm(x, axis=1, keepdims=True)


def _table(n: int, dim: int = 4, seed: int = 0) -> tuple[EmbeddingTable, list[str], np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    paths = [f"/img/{i:05d}.jpg" for i in range(n)]
    table = EmbeddingTable(dim)
    for start in range(0, n, 7):  # added batch by batch, as labeling does
        table.add(paths[start : start + 7], x[start : start + 7])
    return table, paths, x


def test_rows_grow_past_the_initial_capacity_and_keep_their_values() -> None:
    table, paths, x = _table(2500)
    assert len(table) == 2500 and paths[0] in table and "/other.jpg" not in table
    rows = table.rows(paths)
    assert rows == slice(0, 2500)
    view = table.vectors(rows)
    np.testing.assert_array_equal(view, x)
    assert np.shares_memory(view, table.vectors(rows))  # a view, no copy


def test_paths_out_of_order_are_gathered() -> None:
    table, paths, x = _table(50)
    order = [paths[3], paths[1], paths[40]]
    rows = table.rows(order)
    assert not isinstance(rows, slice)
    np.testing.assert_array_equal(table.vectors(rows), x[[3, 1, 40]])
    assert table.rows([]) == slice(0, 0)


def test_features_are_computed_once_per_row_and_follow_changes() -> None:
    table, paths, x = _table(3000)
    norms = CountingNorms()
    rows = table.rows(paths)
    first = table.features(rows, "norm", norms)
    np.testing.assert_allclose(first[:, 0], np.linalg.norm(x, axis=1), rtol=1e-6)
    assert norms.rows == 3000
    table.features(rows, "norm", norms)  # a re-label: nothing to compute
    assert norms.rows == 3000
    # a changed file is embedded again: only its row is recomputed, with the new value
    table.add([paths[10]], np.full((1, 4), 3.0, np.float32))
    again = table.features(rows, "norm", norms)
    assert norms.rows == 3001 and again[10, 0] == pytest.approx(6.0)
    # new images: only they are computed
    table.add(["/img/new.jpg"], np.ones((1, 4), np.float32))
    table.features(table.rows([*paths, "/img/new.jpg"]), "norm", norms)
    assert norms.rows == 3002


def test_another_kind_recomputes_and_none_means_no_features() -> None:
    table, paths, _ = _table(20)
    rows = table.rows(paths)
    norms = CountingNorms()
    table.features(rows, "norm", norms)
    doubled = table.features(rows, "double", lambda x: 2 * x)
    assert doubled.shape == (20, 4)
    table.features(rows, "norm", norms)
    assert norms.rows == 40
    assert table.features(rows, None, norms) is None


def test_features_of_a_subset_then_the_rest() -> None:
    table, paths, x = _table(100)
    norms = CountingNorms()
    table.features(table.rows(paths[:30]), "norm", norms)
    subset = table.features(table.rows(paths[::3]), "norm", norms)
    np.testing.assert_allclose(subset[:, 0], np.linalg.norm(x[::3], axis=1), rtol=1e-6)
    assert norms.rows == 30 + len(range(30, 100, 3))
