"""Generated protobuf and gRPC stubs; regenerate with ``python -m featurestore._proto.generate``."""
