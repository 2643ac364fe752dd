"""MQTT publishing with an on-disk store-and-forward spool."""
