"""Analyst review: the flagged-device queue, dossiers, neighbourhoods, actions and the audit trail."""
