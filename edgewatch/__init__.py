"""edgewatch: the command line and the pieces the edge and the hub share."""

__version__ = "0.1.0"
