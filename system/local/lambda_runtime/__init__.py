"""Lambda runtime emulation: worker processes per function (``pool``), started on demand
(forked by ``fork_server`` where Linux allows) and kept warm, each running ``worker`` with
a real-looking context; logs and EMF metrics kept by ``logs``."""
