"""Content-addressed storage: hashing, the cache, manifests, links, the state cache."""
