"""Remotes: configuration, fsspec back ends, packs, and push / fetch / pull."""
