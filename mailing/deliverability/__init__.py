"""Deliverability: DKIM keys and signing, bounces and complaints, the suppression list."""
