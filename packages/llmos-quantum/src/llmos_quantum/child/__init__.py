"""Scripts that run inside the sandbox, beside the user's program (never imported here)."""
