"""The benchmark: ``mentara bench`` runs the standard workloads against freshly started
servers and prints one table, with the servers' CPU and memory read from the OS.

| module | one concept |
|---|---|
| ``procstats`` | CPU seconds and memory of groups of processes (psutil) |
| ``services`` | the run's Postgres and Redis, a fresh database, their server processes |
| ``servers`` | the servers under test as subprocesses: Mentara and the peers |
| ``wsclient`` | a lean WebSocket client on websockets' Sans-I/O protocol |
| ``listener`` | one session per socket: lag, seq gaps and duplicates, replies |
| ``clients`` | listener and idle-socket plans spread over client processes |
| ``workloads`` | the streaming, efficiency, peer, profile and idle runs |
| ``profiling`` | py-spy on a worker, and the hot spots of its profile |
| ``results`` | what was measured, the verdicts, JSON |
| ``table`` | the one table |
| ``cli`` | the ``mentara bench`` options |
| ``peers`` | the python-socketio and bare websockets servers streaming the same script |

Importing the package loads nothing else; ``server/cli.py`` imports ``bench.cli`` only when
``mentara bench`` runs.
"""
