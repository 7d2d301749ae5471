"""Casebook gateway service: the ingest gateway: cases, studies, uploads, playlists, exports requests; the one door for front ends."""
