"""Pipelines: ``mlops.yaml`` stages, their DAG, the lock, the runner and the run cache."""
