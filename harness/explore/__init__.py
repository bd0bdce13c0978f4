"""Generated scenarios: a contract model, hypothesis-driven sequences, findings shrunk to YAML."""
