"""Write: attribute writers, one per attribute dialect, and the span built from their output.

A writer is a function ``(record, attrs, capture) -> None`` that adds its dialect's attributes
to ``attrs``. The GenAI writer is always on; the compatibility writer (Respan, Traceloop) and
the cost writer can be switched off (:class:`~batchtrace.write.spans.WriterSet`).
"""
