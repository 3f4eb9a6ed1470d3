"""tokenomy: an OpenAI-compatible LLM cost-optimising gateway."""

__version__ = "0.1.0"
