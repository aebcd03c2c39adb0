"""Capacity reports: size DynamoDB from a measured run, price it, and prove the size."""
