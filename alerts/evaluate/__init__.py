"""Pure evaluation, no I/O: the engine, composite conditions, the session loop, backtests, rule
tests and the circuit breaker's policy.

May import alerts.rules and the core only: never Redis, rq, HTTP or Slack clients, alerts.store,
alerts.notify, workers.
"""
