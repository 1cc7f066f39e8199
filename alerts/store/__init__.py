"""Every Redis key and operation: key layout, publishing, streams and consumer groups, the evaluator's
batch read and commit, state, history, breaker counts, delivery markers, digests, failures, pacing,
locks and the embedded server.

May import alerts.evaluate, alerts.rules and the core; never alerts.notify, workers or rq.
"""
