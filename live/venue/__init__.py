"""The venue simulator: a stored day replayed as an exchange feed, order sessions and matching,
over real sockets."""
