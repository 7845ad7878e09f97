"""The HTTP layer of the signing service: the aiohttp application, its middlewares and route handlers.

Handlers read and check the request, call the domain (the modules of `signing_service`) and shape the
answer; the domain never imports this package (tests/service/test_layers.py checks it).
"""
