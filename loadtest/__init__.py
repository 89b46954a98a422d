"""The load-test harness: ``mentara load`` plays N virtual candidates against interview
servers, checks every stream they receive, and measures latency and throughput.

| module | one concept |
|---|---|
| ``config`` | a run's settings (:class:`~loadtest.config.LoadConfig`), the mix and URL parsers |
| ``scenario`` | what a candidate says and types: canned lines, the growing code buffer |
| ``metrics`` | log-bucketed histograms, counters, per-second series; merge across processes |
| ``integrity`` | the stream checks: gaps, duplicates, resume seams, foreign events, transcripts |
| ``link`` | one socket and the task that reads it |
| ``context`` | what the candidates of one worker share |
| ``candidate`` | the virtual candidate's state machine |
| ``worker`` | one event loop playing its share of the candidates |
| ``runner`` | worker processes, progress, the merged result and the verdict |
| ``report`` | the percentile table, the JSON file, the PNG plot |
| ``cli`` | the ``mentara load`` options |

Importing the package loads nothing else; ``server/cli.py`` imports ``loadtest.cli`` only
when ``mentara load`` runs.
"""
