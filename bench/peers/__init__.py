"""The peer servers the benchmark compares Mentara with, streaming the same script:

| module | peer |
|---|---|
| ``script`` | what every peer says: the offline script, paced and coalesced as Mentara does |
| ``socketio_peer`` | python-socketio + ``AsyncRedisManager`` under uvicorn, N workers |
| ``bare_peer`` | a bare ``websockets`` server, one process, no Redis (the floor) |
| ``serve`` | uvicorn on a shared socket, for the ASGI peer |
"""
