"""``tokenomy audit``: read request logs in one streaming pass, price them, and estimate what each saving strategy
(exact cache, routing, provider prompt caching, batch) would save per month. Nothing is read at import time."""
