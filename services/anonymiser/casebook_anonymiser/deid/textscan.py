"""Case-text identifier scanning lives in the shared library (moderation uses it too); re-exported here."""

from casebook_platform.textscan import KINDS, TextFinding, scan_text

__all__ = ["KINDS", "TextFinding", "scan_text"]
