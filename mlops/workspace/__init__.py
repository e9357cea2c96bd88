"""Tracked paths in the work tree: add, status, checkout, diff, unprotect."""
