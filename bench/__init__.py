"""The benchmarks (README "Performance"): run from the repository's folder as modules, ``python -m bench.run``,
``python -m bench.ops``, ``python -m bench.slack``, ``python -m bench.articles``. What they borrow from the test
suite (a private redis-server, the Slack and Socket Mode stand-ins, the pipeline, the sample articles' expected
quotes) comes through ``bench.harness`` only."""
