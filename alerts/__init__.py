"""Event-driven price and news alerts for rare-earth traders.

Holds the core modules (errors, settings, events, units, catalog, model, durations, targets), the
packages rules/, evaluate/, store/ and notify/, and publish.py (the Python API for feeds). The core
imports none of those. Imports point one way: workers -> publish -> notify -> store -> evaluate ->
rules -> core; notify never imports evaluate, nothing in alerts imports rq or workers, and there are
no import cycles. The contracts under [tool.importlinter] in pyproject.toml say so and
tests/test_architecture.py enforces them.
"""

__version__ = "0.1.0"
