"""Wire formats of the live side: encoders and decoders over bytes, no sockets."""
