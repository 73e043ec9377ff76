"""Feed handlers: exchange packets in, the framework event record and book out."""
