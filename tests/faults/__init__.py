"""Fault tier: delivery faults, idempotency and hostile input, each checked span by span."""
