"""Every Redis key and operation: key layout, publishing, streams, loading and committing state,
failures, pacing, history, locks and the embedded server.

May import alerts.evaluate, alerts.rules and the core; never alerts.notify, workers or rq.
"""
