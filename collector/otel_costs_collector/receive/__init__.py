"""Receiving: OTLP over gRPC and HTTP, limits on requests and connections, queuing a request until it is stored."""
