"""Casebook anonymiser service: de-identifies every upload (DICOM PS3.15 Annex E) before anything is stored for serving."""
