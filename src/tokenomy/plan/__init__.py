"""``tokenomy plan``: API tiers against self-hosted GPUs, cluster sizing, a day of autoscaling, KEDA manifests.

Pure computation over two data files shipped here (``gpus.json``, ``throughput.json``) and the price catalogue;
nothing is read or computed at import time.
"""
