"""The central hub: MQTT consumer -> storage -> HTTP API."""
