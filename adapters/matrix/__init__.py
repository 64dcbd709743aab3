"""Matrix adapter (matrix-nio); built in the Matrix adapter issue."""
