"""Versioned SQL migrations, ``NNNN_name.sql``; released files are never edited."""
