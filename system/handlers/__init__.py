"""The chat's Lambda functions, one module per route; ``chat`` holds what they share."""
