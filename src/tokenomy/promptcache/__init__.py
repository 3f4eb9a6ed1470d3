"""Provider prompt-cache shaping, a leaf every layer may use: canonical prefix order (``shape``), prefix hashes and
sticky replicas (``prefix``), Anthropic ``cache_control`` breakpoints (``breakpoints``)."""
