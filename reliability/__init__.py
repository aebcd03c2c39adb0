"""The reliability suite (``tox -e reliability``, outside the default run): the local
stack under faults and hostile input, where nothing accepted may be lost and no one may
get in. It sits beside the contract suite and imports only ``system``."""
