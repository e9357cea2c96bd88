"""Monitoring: drift between a reference and a new batch, its history, and the HTML report."""
