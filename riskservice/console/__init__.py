"""The analysts' web console at ``/console``: server-rendered pages over the review API."""
