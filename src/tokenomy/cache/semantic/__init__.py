"""Semantic cache: serve a cached answer for a paraphrase of the last user turn, within an error bound."""
