"""Broken handler sets the contract suite must catch (see ``mutation_check.py``).

The names here are functions in ``handlers.py``, kept apart so that the check can
list them without importing handler code (which builds boto3 clients at import).
"""

MUTANT_NAMES = ("unpaginated_scan", "no_gone_pruning", "ping_stored", "sender_excluded")
