"""Command-line interface: one module per command group; calls services or the HTTP API, never stores."""
