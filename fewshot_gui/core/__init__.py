"""Lowest layer: device policy, plain data types, the embedding cache, user-facing errors. No Qt."""
