"""Claims as data: structured references, rules on the saved dataset, `check DIR`, `list --paper`."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
import xarray as xr
from typer.testing import CliRunner

from tokenswarm import cli
from tokenswarm.experiments import load_all, registry
from tokenswarm.io.check import RunUnreadableError, check_run, check_tree
from tokenswarm.io.claims import ClaimSet, RunSettings, close, inconclusive, less, same_measurement
from tokenswarm.io.refs import Ref, parse_references
from tokenswarm.io.results import Claim, _quiet_consolidation

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_references_parse_into_paper_and_place():
    assert parse_references("2312.10794 §6, Thm 6.8; 2512.01868 §1") == (
        Ref("2312.10794", "§6, Thm 6.8"), Ref("2512.01868", "§1"))
    assert parse_references("2604.26898 §1; docs/theory/random_mlp.md §3.3") == (
        Ref("2604.26898", "§1; docs/theory/random_mlp.md §3.3"),)
    assert Ref("2408.09523v2", "abstract").base_id == "2408.09523"
    with pytest.raises(ValueError):
        parse_references("finite volumes (flux form)")
    with pytest.raises(ValueError):
        Ref("Fig. 3")


def test_a_claim_is_pass_fail_or_inconclusive():
    claims = ClaimSet()

    @claims.rule("value at d = {d}", Ref("2312.10794", "Fig. 3"))
    def _rule(data, p, run):
        return [less(data, 1.0, labels={"d": 2}), close(data, 0.0, atol=0.1, labels={"d": 8}),
                inconclusive(data, "< 1", "sample too small", labels={"d": 32})]

    made = claims.evaluate(0.05, None, RunSettings())
    assert [c.name for c in made] == ["value at d = 2", "value at d = 8", "value at d = 32"]
    assert [c.status for c in made] == ["pass", "pass", "inconclusive"]
    assert [c.passed for c in made] == [True, True, None]
    assert made[0].to_json_dict()["paper"] == "2312.10794" and made[0].to_json_dict()["where"] == "Fig. 3"
    failing = claims.evaluate(5.0, None, RunSettings())
    assert [c.status for c in failing] == ["fail", "fail", "inconclusive"]


def test_a_rule_must_label_its_placeholders():
    claims = ClaimSet()
    claims.rule("at d = {d}", "2312.10794 Fig. 3")(lambda data, p, run: less(0.0, 1.0))
    with pytest.raises(ValueError, match="labels"):
        claims.evaluate(None, None, RunSettings())


def test_a_legacy_claim_gets_structured_references():
    claim = Claim("x", "2601.21942 Thm 2", 1.0, "< 2", True)
    assert claim.refs == (Ref("2601.21942", "Thm 2"),) and claim.status == "pass"
    assert Claim("x", "no paper here", 1.0, "< 2", False).to_json_dict()["paper"] is None


def test_same_measurement_tolerates_round_off_only():
    assert same_measurement(1.0, 1.0 + 1e-15) and not same_measurement(1.0, 1.0 + 1e-9)
    assert same_measurement([1, None], [1, None]) and not same_measurement([1], [1, 2])


@pytest.fixture(scope="module")
def equiangular_run(tmp_path_factory) -> pathlib.Path:
    load_all()
    out = tmp_path_factory.mktemp("runs") / "equiangular"
    registry.run_experiment("equiangular", {}, quick=True, out_dir=out)
    return out


def _copy(run: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    target = tmp_path / "copy"
    shutil.copytree(run, target)
    return target


def test_check_agrees_on_an_untouched_run(equiangular_run):
    result = check_run(equiangular_run)
    assert result.agree and len(result.claims) == 4
    assert CliRunner().invoke(cli.app, ["check", str(equiangular_run)]).exit_code == 0


def test_check_finds_altered_data(equiangular_run, tmp_path):
    run = _copy(equiangular_run, tmp_path)
    data = xr.open_zarr(run / "data.zarr").load()
    data["spread"] = data.spread + 0.5  # the equiangular configuration now looks broken
    shutil.rmtree(run / "data.zarr")
    with _quiet_consolidation():  # as the library writes its stores (zarr 3 warns on each)
        data.to_zarr(run / "data.zarr")
    outcome = CliRunner().invoke(cli.app, ["check", str(run), "--json"])
    assert outcome.exit_code == 1
    document = json.loads(outcome.stdout)
    differing = [c for c in document["runs"][0]["claims"] if not c["agree"]]
    assert [c["name"] for c in differing] == ["configuration stays equiangular"]
    assert differing[0]["saved"]["status"] == "pass" and differing[0]["recomputed"]["status"] == "fail"


def test_check_finds_an_altered_summary(equiangular_run, tmp_path):
    run = _copy(equiangular_run, tmp_path)
    summary = json.loads((run / "result.json").read_text())
    summary["claims"][1]["measured"] *= 1 + 1e-6
    (run / "result.json").write_text(json.dumps(summary))
    assert CliRunner().invoke(cli.app, ["check", str(run)]).exit_code == 1


@pytest.mark.parametrize("damage", ["missing", "no-result", "bad-json", "no-data", "unknown-experiment"])
def test_check_refuses_what_is_not_a_readable_run(equiangular_run, tmp_path, damage):
    run = _copy(equiangular_run, tmp_path)
    if damage == "missing":
        run = tmp_path / "nowhere"
    elif damage == "no-result":
        (run / "result.json").unlink()
        (run / "sub").mkdir()
    elif damage == "bad-json":
        (run / "result.json").write_text("{not json")
    elif damage == "no-data":
        shutil.rmtree(run / "data.zarr")
    else:
        summary = json.loads((run / "result.json").read_text())
        summary["experiment"] = "no-such-experiment"
        (run / "result.json").write_text(json.dumps(summary))
    with pytest.raises(RunUnreadableError):
        check_tree(run)
    outcome = CliRunner().invoke(cli.app, ["check", str(run)])
    assert outcome.exit_code == 2 and len(outcome.output.strip().splitlines()) == 1


def test_list_paper_json_gives_experiments_with_their_claims():
    outcome = CliRunner().invoke(cli.app, ["list", "--paper", "2312.10794", "--json"])
    assert outcome.exit_code == 0
    listed = json.loads(outcome.stdout)
    names = [entry["name"] for entry in listed]
    assert "equiangular" in names and "two-token-sde" not in names
    equiangular = listed[names.index("equiangular")]
    assert [c["name"] for c in equiangular["claims"]][0] == "particles follow the equiangular ODE"
    assert all(any(ref["paper"] == "2312.10794" for ref in c["refs"]) for c in equiangular["claims"])
    assert equiangular["papers"][0]["paper"] == "2312.10794"
    assert CliRunner().invoke(cli.app, ["list", "--paper", "Fig. 3"]).exit_code == 2


def test_readme_table_is_the_registry_table():
    load_all()
    readme = (ROOT / "README.md").read_text()
    start = readme.index("| experiment | paper | section / figure | what is measured |")
    end = readme.index("<!-- end of experiments table -->")
    assert readme[start:end] == registry.markdown_table(), "run `tokenswarm list --markdown` and paste it into README.md"


def test_register_requires_a_paper_reference():
    from dataclasses import dataclass

    @dataclass
    class Tiny:
        k: int = 1

    with pytest.raises(ValueError, match="arXiv id"):
        registry.register("tiny_unreferenced", title="t", reference="a textbook", params=Tiny)
    assert "tiny_unreferenced" not in registry.names()


def test_equivalent_states_the_interval_and_what_would_decide():
    from tokenswarm.io.claims import equivalent
    decided = equivalent(-0.5, 0.01, 20, -0.5, 0.1)
    assert decided.passed is True and "t-interval" in decided.detail
    undecided = equivalent(-0.58, 0.05, 20, -0.5, 0.1)
    assert undecided.passed is None and "as many would" in undecided.detail
    assert equivalent(-0.9, 0.01, 20, -0.5, 0.1).passed is False


def test_the_time_change_claim_fails_when_the_scheme_does_not_resolve_it(tmp_path):
    """noise-level's claim used to be unable to fail (one number of steps for every sigma2 makes the
    discrete scheme exactly invariant): with one time step for all, an absurd step now fails."""
    load_all()
    result, _ = registry.run_experiment("noise-level", {"step": "0.5"}, quick=True, out_dir=tmp_path, save=False)
    assert [claim.passed for claim in result.claims] == [False]


def test_every_experiment_states_its_claims_as_rules_on_its_data():
    load_all()
    builders = [name for name in registry.names() if registry.get(name).claims is None]
    assert not builders, f"experiments still building claims inside run(): {builders}"
    for name in registry.names():
        for rule in registry.get(name).claims.rules:
            assert rule.refs and all(ref.paper for ref in rule.refs), (name, rule.title)


def test_a_simplex_out_of_reach_is_inconclusive_with_the_time_that_would_decide(tmp_path):
    """energy at d = 8 does not reach the simplex by t = 40 at quick size, but is still converging:
    inconclusive with an extrapolated time; run that long, the claim passes."""
    load_all()
    result, _ = registry.run_experiment("energy", {"d": "8"}, quick=True, out_dir=tmp_path / "a", save=False)
    simplex = [c for c in result.claims if "simplex" in c.name]
    assert [c.status for c in simplex] == ["inconclusive"]
    needed = int(simplex[0].detail.split("simplex_t_max=")[1].split(" ")[0])
    assert 40 < needed < 100
    longer, _ = registry.run_experiment("energy", {"d": "8", "simplex_t_max": str(needed)}, quick=True,
                                       out_dir=tmp_path / "b", save=False)
    assert [c.status for c in longer.claims if "simplex" in c.name] == ["pass"]


def test_lyapunov_runs_in_float32(tmp_path):
    """The renormalised separation follows the precision: float32 used to round the pair together."""
    load_all()
    result, _ = registry.run_experiment("lyapunov", {}, quick=True, dtype="float32", out_dir=tmp_path,
                                        save=False)
    assert [c.passed for c in result.claims] == [True, True, True]


def test_claims_on_an_untrained_model_are_inconclusive():
    from tokenswarm.experiments import pde_vs_transformer as pvt

    data = xr.Dataset({"image_model_test_accuracy": ((), 0.13), "text_model_test_accuracy": ((), 0.99)})
    assert "13% test accuracy" in pvt._undecidable(data, "image")
    assert pvt._undecidable(data, "text") is None
    assert pvt._every_layer([0.99, 0.985], [1.0, 1.0], 0.98) is True
    assert pvt._every_layer([0.97, 0.5], [0.99, 0.6], 0.98) is False   # one layer decisively below
    assert pvt._every_layer([0.97, 0.99], [0.99, 1.0], 0.98) is None   # a layer's interval straddles


def test_an_equiangular_crossing_beyond_t_max_is_out_of_reach_not_failed(tmp_path):
    """At beta = 10 the scalar ODE itself crosses rho = 0.999 only at t = 617: a quick run to t = 14
    cannot decide, and says which t_max would (issue 14 §4)."""
    load_all()
    result, _ = registry.run_experiment("equiangular", {"beta": "10"}, quick=True, out_dir=tmp_path / "run")
    claims = {claim.name: claim for claim in result.claims}
    for name in ("crossing time of rho = 0.999", "late slope of log(1 - rho)"):
        assert claims[name].passed is None and "t_max=" in claims[name].detail, claims[name]
    assert claims["particles follow the equiangular ODE"].passed is True


def test_a_metastable_noise_free_run_is_continued_and_a_resting_one_fails():
    """stochastic-clusters' deterministic control: runs still in several clusters at t_max are
    continued to 8 t_max; moving ones are metastable (inconclusive), resting ones contradict Thm 6.1."""
    import numpy as np
    import xarray as xr

    from tokenswarm.experiments import stochastic_clusters as sc

    runs = 200
    params = sc.Params(runs=runs, t_max=10.0)

    def data(at_t_max, late, speed):
        return xr.Dataset({"outcome": ("run", np.zeros(runs, int)), "deterministic_outcome": ("run", at_t_max),
                           "deterministic_outcome_late": ("run", late), "deterministic_speed_late": ("run", speed)})

    stuck = np.zeros(runs, int)
    stuck[:10] = 2  # 5% in several clusters at t_max
    judge = sc._deterministic
    assert judge(data(stuck, np.zeros(runs, int), np.zeros(runs)), params, RunSettings()).passed is True
    moving = judge(data(stuck, stuck, np.where(stuck > 0, 1e-3, 0.0)), params, RunSettings())
    assert moving.passed is None and "metastable" in moving.detail
    assert judge(data(stuck, stuck, np.zeros(runs)), params, RunSettings()).passed is False


def test_the_discrete_two_token_network_is_extrapolated_in_depth(tmp_path):
    """At L = 50 layers (step 0.8 at t = 40) the network's antipodal fractions carry an O(1/L) bias;
    the claim compares their Richardson extrapolation from L and L/2 with the exact prediction,
    at sqrt(5) times the standard error, and says so (issue 14 §2)."""
    load_all()
    result, _ = registry.run_experiment("two-token-sde", {"method": "discrete", "layers": "50"}, quick=True,
                                        out_dir=tmp_path / "run")
    claim = next(claim for claim in result.claims if claim.name.startswith("antipodal fraction"))
    assert claim.passed is True and "extrapolated to L = inf from L = 50 and 25" in claim.detail
