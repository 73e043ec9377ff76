"""Wire formats of the live side: encoders and decoders, no sockets."""
