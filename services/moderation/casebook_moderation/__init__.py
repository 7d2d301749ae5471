"""Casebook moderation service: the review queue: automatic publication checks, claims, approvals and rejections."""
