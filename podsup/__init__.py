"""podsup: an in-pod supervisor that keeps N workers alive, heals them, drains
them when the pod stops and exports what the HPA scales on."""

__version__ = "0.1.0"
