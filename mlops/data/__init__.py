"""Data versioning: add, status, checkout, diff, gc and fsck over the object store."""
