"""Settings and the policy file."""
