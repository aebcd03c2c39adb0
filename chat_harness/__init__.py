"""The command line, the top layer: ``chat-harness local | load | report | verify``."""
