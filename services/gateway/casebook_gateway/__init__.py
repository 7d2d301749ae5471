"""Casebook gateway service: the one door for front ends (cases, studies, uploads, playlists, export requests)."""
