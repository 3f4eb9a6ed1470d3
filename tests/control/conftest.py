from tests.control.parts import redis_prefix

__all__ = ["redis_prefix"]
