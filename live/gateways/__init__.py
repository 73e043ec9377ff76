"""Order gateways: OUCH 5.0 / SoupBinTCP and FIX 4.4 clients behind one interface."""
