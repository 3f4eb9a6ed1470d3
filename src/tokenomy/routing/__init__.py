"""Learned routing: outcome data in, a router that picks the cheapest model expected to answer well.

``tokenomy route train`` / ``route eval`` drive :mod:`.train` and :mod:`.evaluate`; the gateway loads a trained
directory with :class:`tokenomy.routing.router.Router` and calls ``decide``. Nothing here imports numpy or loads a
model at import time. See docs/routing.md.
"""
