"""The process roles a service runs (``alerts worker --role``): evaluate (``evaluator``), the event-time stage
(``composer``), dispatch (``dispatch``), schedule (``periodic``), poll (``poller``), the heartbeat, the step loop
they share (``loop``), and rq's worker mechanics for delivery.

May import ``alerts`` and ``workers.deliver`` / ``workers.logs``; never ``workers.cli`` or ``workers.web``.
"""
