"""What a process finds around it: settings, logging, the stack file and the maze library.

These read the environment, files and the clock; the pure core beside them (``oriole.*``)
never does, and receives what it needs from here through its callers.
"""
