"""The trading stack: a small online-brokerage back end that faultlab drills.

Processes (each ``python -m tradingstack.<name>``, configured only from the environment):

- ``gateway``  HTTP order intake: places, queries and cancels orders; risk check; outbox
- ``router``   sends accepted orders from the outbox to the exchange; records executions
- ``exchange`` the market simulator: random-walk prices, market/limit/stop orders
- ``batch``    the nightly settlement batch (one-shot, checkpointed, resumable)
- ``schema``   applies migrations and seed data (the gateway does this at start as well)

``tradingstack.drill`` is the plugin faultlab uses (canary, integrity check, locustfile).
Nothing is imported or started at import time.
"""
