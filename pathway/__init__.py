"""pathway."""
