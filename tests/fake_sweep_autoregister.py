"""Imported by dask workers and CLI subprocesses (TOKENSWARM_EXTRA_EXPERIMENTS) to register fake_sweep."""

from fake_sweep import register_sweep_fakes

register_sweep_fakes()
