"""Settings: a TOML file, HUB_* variables over it, and `hub config check` saying what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.cli import main
from hub.config import ConfigError, load_settings


def test_no_file_means_sqlite_in_var_and_localhost_8080(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("HUB_CONFIG", "HUB_DATABASE_URL", "HUB_HTTP_HOST", "HUB_HTTP_PORT", "HUB_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'var' / 'hub.db'}"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)


def test_environment_wins_over_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('http_port = 9000\ndatabase_url = "postgresql://u@db/hub"\n[login_limits]\nattempts = 3\n')
    monkeypatch.setenv("HUB_HTTP_PORT", "9100")
    monkeypatch.setenv("HUB_LOGIN_LIMITS__WINDOW_SECONDS", "60")
    settings = load_settings(path)
    assert settings.http_port == 9100
    assert settings.effective_database_url == "postgresql+asyncpg://u@db/hub"
    assert (settings.login_limits.attempts, settings.login_limits.window_seconds) == (3, 60)


def test_a_secret_of_a_list_item_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(
        '[[onec]]\nname = "buh"\nurl = "http://1c/acc"\nuser = "Обмен"\n'
        '[[onec]]\nname = "trade"\nurl = "http://1c/ut"\nuser = "Обмен"\npassword = "in the file"\n'
        '[[mailbox]]\nname = "sales"\naddress = "sales@example.ru"\nhost = "imap.example.ru"\n'
        'username = "sales@example.ru"\n'
    )
    monkeypatch.setenv("HUB_ONEC__1__PASSWORD", "из окружения")
    monkeypatch.setenv("HUB_MAILBOX__0__PASSWORD", "mail secret")
    settings = load_settings(path)
    assert [(o.name, o.password.get_secret_value()) for o in settings.onec] == [("buh", ""), ("trade", "из окружения")]
    assert settings.mailbox[0].password.get_secret_value() == "mail secret"
    monkeypatch.setenv("HUB_ONEC__2__PASSWORD", "no such item")
    with pytest.raises(ConfigError, match="onec.2.name"):
        load_settings(path)


def test_hub_config_env_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("http_port = 9001\n")
    monkeypatch.setenv("HUB_CONFIG", str(path))
    monkeypatch.delenv("HUB_HTTP_PORT", raising=False)
    assert load_settings().http_port == 9001


def test_signing_key_is_generated_once_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HUB_SECRET_KEY", raising=False)
    first = load_settings().signing_key()
    assert load_settings().signing_key() == first and len(first) >= 32
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("HUB_SECRET_KEY", "from-the-environment")
    assert load_settings().signing_key() == b"from-the-environment"


def test_config_check_names_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('http_port = 70000\ndefault_region = "XX"\nhttp_prot = 1\n[login_limits]\nattempts = 0\n')
    assert main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: http_port: Input should be less than or equal to 65535 (got 70000)" in err
    assert "default_region: Value error, unknown region 'XX'" in err
    assert "http_prot: unknown setting" in err
    assert "login_limits.attempts: Input should be greater than or equal to 1 (got 0)" in err


def test_config_check_reports_toml_syntax_with_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('http_port = 8080\ndatabase_url = "unterminated\n')
    assert main(["config", "check", str(path)]) == 1
    assert "not valid TOML" in capsys.readouterr().err and "line 2" in str(
        pytest.raises(ConfigError, load_settings, path).value
    )


def test_config_check_accepts_the_shipped_sample(capsys: pytest.CaptureFixture[str]) -> None:
    sample = Path(__file__).parent.parent / "deploy" / "hub.example.toml"
    assert main(["config", "check", str(sample)]) == 0
    assert "OK" in capsys.readouterr().out


def test_secrets_are_not_echoed_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("secret_key = 12345\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert "12345" not in str(exc.value)
