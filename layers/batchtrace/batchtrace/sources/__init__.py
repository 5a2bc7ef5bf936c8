"""Where batch files come from: one module per provider API that batchtrace can copy them from."""
