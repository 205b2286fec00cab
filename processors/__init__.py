"""Spark Structured Streaming jobs that turn the event log into feature rows and anomalies."""
