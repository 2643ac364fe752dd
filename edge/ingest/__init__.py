"""Reading camera streams (PyAV)."""
