"""The venue simulator: a stored day replayed as an exchange feed over real sockets."""
