"""Judges that need the network (Claude); the pure judges live in ``scoring.judges``."""
