"""Foundations: the repository and its config, Git, YAML, files, SQLite, workers."""
