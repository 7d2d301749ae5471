"""Casebook anonymiser service: de-identifies every upload (DICOM PS3.15 Annex E) before it is served."""
