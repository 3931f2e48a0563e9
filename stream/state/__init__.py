"""Per-customer state: the profile (pure) and its Redis edge."""
