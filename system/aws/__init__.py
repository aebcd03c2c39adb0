"""The chat in AWS: deploy, destroy, and what they need (boto3 only)."""
