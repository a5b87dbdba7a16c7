"""What the tests and the benchmark scripts use to drive the service from outside; none of it ships with the
service (its imports, httpx, websockets and NetworkX, are test dependencies).

:mod:`.devserver` runs the service (or another ASGI app) in a uvicorn subprocess and sends it many clients at once,
:mod:`.browser` drives headless Chromium over the DevTools protocol, and :mod:`.networkx_baseline` answers the
coverage question with NetworkX, the independent computation the scipy one is checked and timed against. The
benchmark scripts reach this package through ``scripts/_bench.py``, which puts the repository on ``sys.path``.
"""
