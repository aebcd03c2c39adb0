raise ImportError("this module cannot load")
