"""The gateway: live run feeds over websockets, replay, the viewer and a small read API.

docs/gateway.md is the contract; :class:`gateway.server.Gateway` implements it.
"""

from gateway.server import Gateway

__all__ = ["Gateway"]
