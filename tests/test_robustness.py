"""The robustness suite: its parameter sets are valid, and a small run tallies every claim."""

from __future__ import annotations

from tokenswarm import robustness
from tokenswarm.experiments import load_all, registry


def test_every_experiment_has_at_least_three_valid_variants():
    load_all()
    shipped = {name for name in registry.names()  # not the throw-away experiments of other tests
               if registry.get(name).run.__module__.startswith("tokenswarm.experiments.")}
    declared = {name: variants for name, variants in robustness.variants().items() if name in shipped}
    assert set(declared) == shipped
    for name, variants in declared.items():
        assert len(variants) >= 3, name
        for variant in variants:
            overrides = {key: value for key, value in variant.items() if key != "dtype"}
            try:
                registry.prepare(name, overrides, quick=True, dtype=variant.get("dtype", "float64"))
            except registry.UsageError as error:
                # a precision the experiment refuses is a valid variant: it is counted as refused
                assert "dtype" in variant and "runs only in" in str(error), (name, variant, error)


def test_a_small_suite_counts_each_claim_per_parameter_set():
    outcomes = robustness.run_suite(["long-context"], seeds=[0])
    tallies = robustness.tally(outcomes)
    variants = {t.variant for t in tallies}
    assert variants == {"defaults", *(robustness._label(v) for v in registry.get("long-context").variants)}
    assert all(sum(t.counts.values()) == 1 for t in tallies)  # one seed: one outcome per claim and set
    assert "error" not in robustness.summary_counts(outcomes)
    table = robustness.markdown(tallies)
    assert table.count("\n") == len(tallies) + 2


def test_a_run_that_raises_is_counted_as_an_error(monkeypatch):
    load_all()

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(registry, "run_experiment", boom)
    outcomes = robustness.run_suite(["long-context"], seeds=[0])
    assert {o.status for o in outcomes} == {"error"} and outcomes[0].detail == "RuntimeError: boom"
