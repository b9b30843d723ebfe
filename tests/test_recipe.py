"""Recipes: base merging, --set overrides with coercion, validation errors with key paths and suggestions."""

import pytest

from prefopt.recipe import RecipeError, dump_recipe, load_recipe, parse_override
from tests.conftest import ROOT, run_cli


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_base_merges_key_by_key_and_name_is_the_files_own(tmp_path):
    write(tmp_path, "base.yaml", "name: base\nmodel: {path: m}\nloss: {beta: 0.3, sft_weight: 0.5}\ntrain: {seed: 7}\n")
    r = load_recipe(write(tmp_path, "child.yaml", "base: base.yaml\nloss: {beta: 0.05}\n"))
    assert (r.loss.beta, r.loss.sft_weight, r.train.seed, r.model.path) == (0.05, 0.5, 7, "m")
    assert r.name == "child"


def test_base_chain_and_loop(tmp_path):
    write(tmp_path, "a.yaml", "model: {path: m}\noptim: {lr: 0.5}\n")
    write(tmp_path, "b.yaml", "base: a.yaml\noptim: {warmup_steps: 3}\n")
    r = load_recipe(write(tmp_path, "c.yaml", "base: b.yaml\n"))
    assert (r.optim.lr, r.optim.warmup_steps) == (0.5, 3)
    write(tmp_path, "x.yaml", "base: y.yaml\n")
    write(tmp_path, "y.yaml", "base: x.yaml\n")
    with pytest.raises(RecipeError, match="loops"):
        load_recipe(tmp_path / "x.yaml")


def test_overrides_coerce_types_and_repeat(tmp_path):
    p = write(tmp_path, "r.yaml", "model: {path: m}\n")
    assert load_recipe(p, ["optim.lr=6e-3"]).optim.lr == 0.006  # YAML 1.1 reads 6e-3 as a string
    r = load_recipe(p, ["loss.beta=0.05", "train.max_steps=12", "log.wandb=true", "log.tags=[a, b]",
                        "loss.beta=0.07", "data.train=x.jsonl"])
    assert (r.loss.beta, r.train.max_steps, r.log.wandb, r.log.tags, r.data.train) == (0.07, 12, True, ["a", "b"],
                                                                                      "x.jsonl")
    assert isinstance(r.loss.beta, float)
    assert parse_override("loss.beta=1") == ("loss.beta", 1)


@pytest.mark.parametrize("override, message", [
    ("loss.betta=1", "unknown key `loss.betta` (did you mean `loss.beta`?)"),
    ("train.max_steps=ten", "train.max_steps=ten: expected an integer, got 'ten'"),
    ("log.wandb=maybe", "expected true or false"),
    ("ppo.reward.kind=judge", "ppo.reward.kind=judge: expected one of 'rm', 'rule', 'llm'"),
    ("ppo.lam=2", "ppo.lam=2: must be in [0, 1]"),
    ("ppo.rollout_batch_size=0", "must be > 0"),
    ("loss.beta=-1", "loss.beta=-1: must be > 0"),
    ("data.max_prompt_length=900", "must be in (0, data.max_length=512)"),
    ("train.max_tokens_per_batch=-5", "train.max_tokens_per_batch=-5: must be >= 0"),
    ("loss", "expected KEY=VALUE"),
    ("grpo.reward.partial_credit=4", "grpo.reward.partial_credit=4: needs reward.kind: rule and a value in [0, 4)"),
    ("ppo.reward.partial_credit=1", "ppo.reward.partial_credit=1: needs reward.kind: rule"),  # ppo's kind is rm
])
def test_bad_overrides_name_the_key(tmp_path, override, message):
    p = write(tmp_path, "r.yaml", "model: {path: m}\n")
    with pytest.raises(RecipeError) as e:
        load_recipe(p, [override])
    assert message in str(e.value)


def test_file_errors_name_file_and_key(tmp_path):
    p = write(tmp_path, "r.yaml", "model: {path: m}\noptim:\n  lr: fast\n")
    with pytest.raises(RecipeError, match=r"r.yaml: optim.lr: expected a number, got 'fast'"):
        load_recipe(p)
    p = write(tmp_path, "s.yaml", "model: {path: m}\ntrian: {seed: 1}\n")
    with pytest.raises(RecipeError, match=r"unknown key `trian` \(did you mean `train`\?\)"):
        load_recipe(p)
    p = write(tmp_path, "t.yaml", "model: [unclosed\n")
    with pytest.raises(RecipeError, match=r"t.yaml:\d+: invalid YAML"):
        load_recipe(p)


def test_yaml_is_loaded_safely(tmp_path):
    p = write(tmp_path, "r.yaml", "model: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(RecipeError, match="invalid YAML"):
        load_recipe(p)


def test_dump_round_trips(tmp_path):
    r = load_recipe(ROOT / "recipes/tiny/dpo.yaml", ["loss.beta=0.2"])
    again = load_recipe(write(tmp_path, "dumped.yaml", dump_recipe(r)))
    assert dump_recipe(again).replace("name: dumped", "name: tiny_dpo") == dump_recipe(r)


def test_cli_dry_run_prints_resolved_recipe():
    res = run_cli("dpo", "--recipe", "recipes/tiny/dpo.yaml", "--set", "loss.beta=0.05", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "  beta: 0.05\n" in res.stdout and "  beta_rejected: 0.05\n" in res.stdout


def test_loss_variants_belong_to_prefopt_dpo():
    res = run_cli("dpo", "--recipe", "recipes/tiny/dpo.yaml", "--set", "loss.variant=simpo", "--dry-run")
    assert res.returncode == 0 and "  variant: simpo\n" in res.stdout
    res = run_cli("ipo", "--recipe", "recipes/tiny/dpo.yaml", "--set", "loss.variant=simpo", "--set", "train.max_steps=1")
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1] == (
        "prefopt ipo: loss.variant: `simpo` is a variant of `prefopt dpo`, not of `prefopt ipo`")
    res = run_cli("dpo", "--recipe", "recipes/tiny/dpo.yaml", "--set", "loss.variant=orpo", "--set", "loss.sft_weight=1")
    assert res.returncode == 2 and "flex-β and loss.sft_weight belong to the dpo variant, not `orpo`" in res.stderr


def test_the_command_is_the_only_home_of_the_objective():
    res = run_cli("ipo", "--recipe", "recipes/tiny/dpo.yaml", "--set", "loss.name=slic", "--dry-run")
    assert res.returncode == 2 and "unknown key `loss.name`" in res.stderr


def test_cli_user_error_exits_2_without_trace():
    res = run_cli("dpo", "--recipe", "recipes/tiny/dpo.yaml", "--set", "loss.betta=1")
    assert res.returncode == 2
    assert "loss.betta" in res.stderr and "did you mean `loss.beta`?" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_help_and_version():
    res = run_cli("--help")
    for cmd in ("sft", "dpo", "ipo", "slic", "rm", "ppo", "generate", "judge"):
        assert cmd in res.stdout
    assert "not available" not in res.stdout
    assert run_cli("--version").stdout.startswith("prefopt ")


def test_docs_key_table_is_the_schema():
    """docs/recipes.md's key table is exactly what scripts/recipe_keys.py generates from prefopt/schema.py, and
    it has one row per leaf key: a key added, renamed, retyped or re-documented without regenerating fails here."""
    import importlib.util

    from prefopt.recipe import all_keys

    spec = importlib.util.spec_from_file_location("recipe_keys", ROOT / "scripts" / "recipe_keys.py")
    recipe_keys = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe_keys)
    doc = (ROOT / "docs" / "recipes.md").read_text()
    committed = doc.split("<!-- keys -->\n", 1)[1].split("\n<!-- /keys -->", 1)[0]
    assert committed == recipe_keys.table(), "docs/recipes.md is stale: run python scripts/recipe_keys.py --write"
    keys = all_keys()
    leaves = [k for k in keys if not any(other.startswith(k + ".") for other in keys)]
    rows = [line.split("`")[1] for line in committed.splitlines()[2:]]
    assert rows == leaves


def test_a_section_set_in_part_keeps_its_fields_own_defaults(tmp_path):
    """grpo.reward defaults to kind rule (ppo.reward to rm): setting another of its keys must not reset the kind to
    RewardConfig's class default."""
    p = write(tmp_path, "r.yaml", "model: {path: m}\ngrpo: {reward: {partial_credit: 1.0}}\n")
    recipe = load_recipe(p)
    assert (recipe.grpo.reward.kind, recipe.grpo.reward.partial_credit) == ("rule", 1.0)
    assert load_recipe(p, ["ppo.reward.path=x"]).ppo.reward.kind == "rm"
