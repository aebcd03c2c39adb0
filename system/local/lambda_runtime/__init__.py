"""Lambda runtime emulation: warm worker processes per function (``pool``), each running
``worker`` with a real-looking context; logs and EMF metrics kept by ``logs``."""
