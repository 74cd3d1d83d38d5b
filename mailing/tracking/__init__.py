"""Open and click tracking and unsubscribes: the signed links put into a message at delivery, and what is
recorded when a recipient follows one (events, Usage counters, the suppression list)."""
