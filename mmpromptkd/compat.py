"""Compatibility patches for the pinned OpenMMLab stack (filled below)."""
