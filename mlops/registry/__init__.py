"""Model registry: immutable versions, aliases with gated promotion, history, lineage.

Records live in Git as annotated tags (``tags.py``, ``records.py``); content lives
in the object store (``content.py``). The public API, by module:

- ``register.register_model``
- ``promote.promote``, ``promote.rollback``, ``promote.model_settings``
- ``history.list_models``, ``history.show``, ``history.history``
- ``content.get_model``, ``content.load_model``, ``content.registry_objects``
- ``tags.resolve``, ``tags.read_registry``
- ``lineage.lineage``, ``lineage.used_by``

Nothing is imported here, so that a command loads only the modules it uses.
"""
