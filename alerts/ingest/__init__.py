"""Data in from outside: CSV history files and market articles (English and Chinese) turned into events.
May import alerts.store (to publish), alerts.rules and the core; never notify, workers or rq."""
