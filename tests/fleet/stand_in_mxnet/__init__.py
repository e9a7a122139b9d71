"""Generator of the STAND-IN for Apache MXNet's build system (see make_stand_in.py)."""
