"""``mlops import-dvc``: a DVC project's pipeline, data, lock and remotes, read as they are."""
