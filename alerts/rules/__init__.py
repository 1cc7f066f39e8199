"""The rule language: file models, YAML with line numbers, loading, compiling, checks, schema,
message templates, phrase matching, explain and hot reload.

May import the core (alerts.errors, settings, events, units, catalog, model, durations, targets)
only: never Redis, rq, HTTP or Slack clients, alerts.evaluate, alerts.store, alerts.notify, workers.
"""
