"""The OS seam: everything that touches processes, signals, descriptors and files.

Forking and exec (spawn), reaping and killing behind a small ``System``
object the loop can swap for a fake (system), cgroup readings, the private
run directory, the per-worker report sockets, the control socket's
wire format (framing), and the writer that carries
podsup's and its workers' output lines. Imports only podsup.core (and
podsup.names); the layers above reach the OS only through here.
"""
