"""Unit tests of ``mlops.pipeline``: the library called directly, on real files."""
