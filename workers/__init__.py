"""Process entry points: the event evaluator, the rq dispatch jobs, the scheduler and the CLI.

This is the only package that imports rq.
"""
