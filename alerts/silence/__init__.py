"""Silences, pure: what a silence is (matchers, end, audit trail), which alerts and targets it matches, and
what the delivery job does with an alert that active silences match (``alerts.silence.model``).

Core-level, like the other pure building blocks: may import the core (``alerts.model``, ``alerts.durations``,
``alerts.targets``) only; never Redis, rq, HTTP or Slack clients, alerts.rules, alerts.evaluate,
alerts.store, alerts.notify, workers. Redis operations on silences live in ``alerts.store.silences``.
"""
