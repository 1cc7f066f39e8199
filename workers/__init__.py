"""Process entry points: the evaluator, dispatch and delivery jobs, periodic jobs, the service and
the CLI.

May import everything in alerts; the only package that imports rq. Nothing in alerts imports it.
"""
