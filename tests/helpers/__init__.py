"""Helpers shared by the tests, one module per thing they make or drive.

``repos`` (Git repositories), ``files`` (writing test files), ``cli`` (the real CLI,
in process and as a subprocess), ``servers`` (moto S3, sshd, Azurite on 127.0.0.1),
and one module per feature: ``checks``, ``dvc``, ``monitor``, ``pipeline``,
``registry``, ``remote``, ``serve``. Fixtures stay in ``tests/conftest.py``; these are
plain functions.
"""
