"""The HTTP face of the service and Slack's ways in: the Starlette app (``http``: POST /events, /healthz, /readyz,
/metrics, the Slack endpoints), the transport-free Slack handlers (``slack_actions``), Socket Mode
(``slack_socket``) and the Prometheus rendering (``metrics``).

May import ``alerts`` and ``workers.logs``; never ``workers.cli`` or ``workers.roles``.
"""
