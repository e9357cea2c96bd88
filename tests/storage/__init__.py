"""Unit tests of ``mlops.storage``: the library called directly, on real files."""
