"""Rules fed detections and time; no video needed to test them."""
