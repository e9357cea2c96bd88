"""Serving: ``mlops serve`` puts a registered model behind HTTP, follows its alias and logs
its predictions into the monitor's batch folder; ``mlops predict`` scores files.

- ``server.serve``: start the server (``app.build_app`` is the Starlette application)
- ``model.ModelHolder``: the version serving, following its alias
- ``log.PredictionLog``: rolling JSON-lines prediction logs, off the request path
- ``inputs.parse_body``: request bodies to checked columns

Nothing is imported here, so that ``mlops --help`` never loads the server's libraries.
"""
