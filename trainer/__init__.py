"""Curated image list -> DCGAN run folder (issue 5 on). Always run as its own process."""
