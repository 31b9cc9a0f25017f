"""Importing this module registers the metrics API's handlers (HTTPS server,
queue pollers, scale to zero) in kopf's default registry; ``podsup-operator
run`` imports it from HANDLER_MODULES."""
import kopf

from .handlers import register

register(kopf.get_default_registry())
