"""Send: encode spans as OTLP protobuf and deliver them in bounded, retried chunks (and metrics)."""
