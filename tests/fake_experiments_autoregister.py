"""Imported by a CLI subprocess (TOKENSWARM_EXTRA_EXPERIMENTS) to register the fakes."""

from fake_experiments import register_all

register_all()
