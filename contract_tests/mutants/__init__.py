"""Broken handler sets the contract suite must catch (see ``mutation_check.py``)."""
