"""Fairness mitigation: post-processing thresholds (fairlearn) and reweighing, with the frontier.

Importing this package imports neither fairlearn nor torch; each method imports what it needs.
"""
