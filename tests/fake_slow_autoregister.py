"""Imported by a CLI subprocess (TOKENSWARM_EXTRA_EXPERIMENTS) to register the fakes and fake_slow."""

from fake_experiments import register_all, register_slow

register_all()
register_slow()
