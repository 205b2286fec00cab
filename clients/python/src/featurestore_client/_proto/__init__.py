"""Generated stubs; regenerate with python -m featurestore._proto.generate."""
