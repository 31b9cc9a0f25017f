"""The control plane: a Unix socket speaking framed JSON (like gunicorn's ctl/).

framing.py  -- the wire format (length-prefixed JSON), shared by both ends
handlers.py -- what each command does, over Arbiter.submit()/snapshot()
server.py   -- the listening socket and its threads (thin I/O)
client.py   -- one request/response round trip, with one-line errors
cli_commands.py -- `podsup status|scale|reload|drain`
"""
