"""The Python API for feeds, at the path feed scripts import: ``publish_events`` and ``publish_lines``
(implemented in ``alerts.store.publish``). The top of ``alerts``: nothing in it imports this module.

    >>> from alerts.publish import publish_events
    >>> report = publish_events([{"type": "price", "product": "Pr-Nd oxide", "price": 444000,
    ...                           "unit": "CNY/t", "as_of": "2025-03-11", "source": "smm"}])
    >>> report.ok, report.published, report.errors   # doctest: +SKIP
    (True, 1, [])
"""

from alerts.store.publish import Publisher, PublishReport, publish_events, publish_lines

__all__ = ["PublishReport", "Publisher", "publish_events", "publish_lines"]
