"""The hub's services: what the API routes do, apart from HTTP.

Routes (:mod:`central.api`) parse the request, inject the session and the caller, and
shape the answer; the logic they share lives here, so it is written once and can be
used without a request (the live bus loads alert documents in the MQTT thread):
:mod:`.alerts` (the serializer, visibility, queries, status changes and review
decisions), :mod:`.evidence` (manifest checks) and :mod:`.live` (what the live stream
sends, per role). A refusal is an :class:`~central.services.alerts.AlertError` with its
HTTP status; the app answers it as FastAPI answers an ``HTTPException``.
"""
