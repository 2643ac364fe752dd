"""The edge worker: ingest -> inference -> analytics -> events -> transport."""
