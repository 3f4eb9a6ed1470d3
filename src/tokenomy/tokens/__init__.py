"""Offline token counting (tiktoken with encoding files shipped in the package)."""
