"""Response caching: the exact cache (this package), later the semantic cache and prompt-cache shaping."""
