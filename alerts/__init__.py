"""Event-driven price and news alerts for rare-earth traders.

The package is the pure core plus the Redis edge: settings, event models, the product catalog,
rule loading and evaluation, notifiers and Redis storage. It never imports rq; the process entry
points that do live in the sibling ``workers`` package.
"""

__version__ = "0.1.0"
