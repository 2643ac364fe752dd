"""The hub's Prometheus metrics (one registry per app, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class HubMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.received = Counter(
            "edgewatch_hub_messages_received", "MQTT messages received", ["kind"], registry=r
        )
        self.rejected = Counter(
            "edgewatch_hub_messages_rejected",
            "Messages rejected (malformed, wrong schema, too large, unknown)",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "edgewatch_hub_duplicate_messages",
            "Event messages already applied (replays, duplicates)",
            registry=r,
        )
        self.stored = Counter(
            "edgewatch_hub_messages_stored", "Messages applied to storage", ["kind"], registry=r
        )
        self.db_errors = Counter("edgewatch_hub_storage_errors", "Storage errors", registry=r)
        self.sessions_lost = Counter(
            "edgewatch_hub_mqtt_sessions_lost",
            "Reconnects on which the broker no longer had the hub's persistent session",
            registry=r,
        )
        self.mqtt_connected = Gauge("edgewatch_hub_mqtt_connected", "1 when connected", registry=r)
        self.deliveries = Counter(
            "edgewatch_hub_delivery_attempts",
            "Notification delivery attempts by channel and outcome",
            ["channel", "ok"],
            registry=r,
        )
        self.offline_alerts_capped = Counter(
            "edgewatch_hub_offline_alerts_capped",
            "Cameras whose camera_offline alert was held back by "
            "limits.max_offline_alerts_per_min (each camera once per outage)",
            registry=r,
        )
        self.offline_alerts_held = Gauge(
            "edgewatch_hub_offline_alerts_held",
            "Cameras offline past the grace period still waiting for an alert slot",
            registry=r,
        )
        self.orphans_expired = Counter(
            "edgewatch_hub_orphans_expired",
            "Snapshots and evidence files of unknown events deleted after "
            "limits.orphan_snapshot_ttl_s",
            ["kind"],
            registry=r,
        )
        self.mqtt_disconnects = Counter(
            "edgewatch_hub_mqtt_disconnects",
            "Times the hub lost its broker connection (flapping: another client with the "
            "hub's account, a broker restart loop, a network fault)",
            registry=r,
        )
        self.mqtt_flapping = Gauge(
            "edgewatch_hub_mqtt_flapping",
            "1 while the hub's broker connection flaps (health says degraded)",
            registry=r,
        )
        self.clock_skew = Gauge(
            "edgewatch_hub_edge_clock_skew_seconds",
            "An edge's clock minus the hub's, from its latest camera status",
            ["site", "edge"],
            registry=r,
        )
