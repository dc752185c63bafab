"""Profiles: strict keys, no silent fallback, notebook parameter validation."""
import pytest

from dgsslib.profiles import ConfigError, check_notebook_params, dotted_to_nested, parse_value, resolve


def test_profiles_resolve_to_their_backbones():
    assert resolve("smoke")["backbone"] == "tiny"
    mini = resolve("mini")
    assert mini["backbone"] == "dinov2_s" and mini["data"]["train"] == "synthetic:source"
    paper = resolve("paper")
    assert paper["backbone"] == "dinov2_l" and paper["weights"] == "hub" and paper["data"]["train"] == "gtav:train"
    assert paper["eval"]["mode"] == "slide" and paper["eval"]["stride"] == 341


def test_unknown_keys_and_profiles_fail_with_allowed_values():
    with pytest.raises(ConfigError, match="max_steps"):
        resolve("smoke", {"train": {"max_step": 3}})
    with pytest.raises(ConfigError, match="smoke, mini, paper"):
        resolve("tiny")
    with pytest.raises(ConfigError, match="PROFILE"):
        check_notebook_params("fast", 0, {})
    with pytest.raises(ConfigError, match="SEED"):
        check_notebook_params("smoke", "0", {})


def test_overrides_and_cli_values():
    cfg = check_notebook_params("smoke", 1, {"train.lr": 0.5, "method_options.r": 4})
    assert cfg["train"]["lr"] == 0.5 and cfg["method_options"] == {"r": 4}
    assert dotted_to_nested({"a.b": 1}) == {"a": {"b": 1}}
    assert parse_value("1e-4") == 1e-4 and parse_value("true") is True and parse_value("core") == "core"


def test_seed_lists_are_checked_container_first():
    from dgsslib.profiles import ConfigError, check_seed_list
    assert check_seed_list([0, 2]) == [0, 2] and check_seed_list((1,)) == [1]
    assert check_seed_list([], allow_empty=True) == []
    for bad, msg in (("abc", "list of int seeds"), ({"a": 1}, "list of int seeds"), (3, "list of int seeds"),
                     ([], "at least one"), ([0, "1"], "non-negative int"), ([True], "non-negative int"),
                     ([-1], "non-negative int"), ([0, 0], "repeats")):
        with pytest.raises(ConfigError, match=msg):
            check_seed_list(bad)


def test_setup_checks_every_notebooks_extra_parameters(capsys):
    """``setup`` checks SEEDS / ABLATION_SEEDS / EXTRA_SEEDS / PLAN / switches the same way in every notebook,
    read from the calling notebook's namespace, before anything runs."""
    from dgsslib.notebook import setup
    from dgsslib.profiles import ConfigError
    for params, match in [({"SEEDS": "abc"}, "SEEDS must be a list"), ({"SEEDS": []}, "at least one seed"),
                          ({"ABLATION_SEEDS": [0, 0]}, "repeats"), ({"PLAN": "fast"}, "PLAN must be"),
                          ({"DIAGNOSE": "no"}, "DIAGNOSE must be")]:
        with pytest.raises(ConfigError, match=match):
            setup("smoke", 0, {}, notebook="t", params=params)
    assert setup("smoke", 0, {}, notebook="t", params={"SEEDS": None, "EXTRA_SEEDS": [], "PLAN": "quick"})
    globals()["SEEDS"] = "abc"  # a notebook's namespace (the caller's globals) is where setup looks by default
    try:
        with pytest.raises(ConfigError, match="SEEDS must be a list"):
            setup("smoke", 0, {}, notebook="t")
    finally:
        del globals()["SEEDS"]
