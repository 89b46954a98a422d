"""The partition harness: ``mentara chaos`` and the ``chaos`` pytest suite, Jepsen-style
(docs/reliability.md).

| module | one concept |
|---|---|
| ``netns`` | hosts as network namespaces on a bridge; partitions; removal, also of stale runs |
| ``delay_proxy`` | latency and loss on one link, in user space (this kernel has no ``netem``) |
| ``redis_nodes`` | Redis on its hosts: a cluster of 3 masters and 3 replicas, or one Redis; kill and recover |
| ``stack`` | Postgres, Redis, three servers and the candidates, each on its host |
| ``nemesis`` | the faults, one at a time then combined, on a schedule |
| ``checker`` | the invariants, over every client's records, the store and the servers' logs |
| ``run`` | one run, start to verdict, always cleaned up |
| ``cli`` | the ``mentara chaos`` options |

Importing the package loads nothing else; ``server/cli.py`` imports ``chaos.cli`` only when
``mentara chaos`` runs.
"""
