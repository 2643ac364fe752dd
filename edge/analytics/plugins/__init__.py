"""Analytic plugins: one folder each, found by ``edge.analytics.registry``'s package scan.

A folder's ``__init__`` declares ``PLUGINS`` (manifests: pydantic only); its runtime is
imported only on an edge that runs it. See ``edge/analytics/base.py`` for the protocol.
"""
