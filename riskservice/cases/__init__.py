"""Cases on the service side: how they are stored (``store``) and matched across write-backs (``match``)."""
