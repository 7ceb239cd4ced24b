"""What the tests share: episode drivers, the API and web worlds, and where the protocol is."""
