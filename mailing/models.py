"""What is sent: API keys, messages, sending domains and the archive (arrive with the sending engine)."""
