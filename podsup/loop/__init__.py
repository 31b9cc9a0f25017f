"""The loop: the one thread that owns the worker table, forks, reaps and signals.

Built on podsup.core (decisions) and podsup.host (the OS); it calls plug-ins
only through the Extension hooks of podsup.core.plugin and never imports
podsup.plugins or podsup.cli.
"""
