"""The ``alerts`` command: one module per command group, each registering its parser (``register(sub)``) and
holding its ``cmd_*`` functions; ``main`` assembles them and turns errors into exit codes.

May import ``alerts`` (everything), ``workers.service`` (``alerts run`` / ``alerts worker``), ``workers.roles``
and ``workers.deliver`` (queue names, job options); never imported by roles or web.
"""
