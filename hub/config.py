"""The hub's one typed settings object: a TOML file plus ``HUB_*`` environment variables.

Read once at start-up and passed down; nothing else reads the environment.  Values
from the environment win over the file, so a container can override a shipped file.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path
from typing import Any, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from connectors.onec.field_maps import OVERRIDABLE
from crm_core.onec.records import FIELDS, LIST_FIELDS

CONFIG_ENV = "HUB_CONFIG"
SECRET_KEY_FILE = "secret.key"


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class LoginLimits(BaseModel):
    """How many failed logins one address or one user name may make in a window."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(5, ge=1)
    window_seconds: int = Field(300, ge=1)


class PbxSettings(BaseModel):
    """One Asterisk (or FreePBX) the hub follows over AMI: a ``[[pbx]]`` table."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    host: str
    port: int = Field(5038, ge=1, le=65535)
    username: str
    secret: SecretStr
    region: str = "RU"
    # Click-to-call: the operator's phone is rung through this channel first, then the
    # number is dialled in this context.
    operator_channel: str = "PJSIP/{extension}"
    originate_context: str = "from-internal"
    dial_format: Literal["digits", "e164", "national"] = "digits"
    originate_timeout_seconds: int = Field(30, ge=5, le=300)
    # Call recordings (MixMonitor): the PBX reports each file's path under recordings_path; the
    # hub reads them from recordings_dir, where that directory is mounted here (NFS, sshfs, a
    # volume).  Unset: recordings are listed on the call but cannot be played from the card.
    recordings_path: str = "/var/spool/asterisk/monitor"
    recordings_dir: Path | None = None
    # Keepalive and reconnection: a Ping every ping_interval; no answer within ping_timeout
    # means a dead peer; reconnects back off from reconnect_min to reconnect_max (with jitter).
    ping_interval_seconds: float = Field(5.0, gt=0)
    ping_timeout_seconds: float = Field(3.0, gt=0)
    reconnect_min_seconds: float = Field(0.5, gt=0)
    reconnect_max_seconds: float = Field(30.0, gt=0)

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return _region(value)


class SmtpSettings(BaseModel):
    """How mail from a mailbox goes out; user and password default to the mailbox's own."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    timeout_seconds: float = Field(30.0, gt=0)


class MailboxSettings(BaseModel):
    """One IMAP mailbox the hub follows (a shared ``sales@`` or a person's): a ``[[mailbox]]``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    address: str = ""  # the mailbox's own address, the From of mail sent from it
    host: str
    port: int | None = Field(None, ge=1, le=65535)  # default: 993 for tls, 143 otherwise
    security: Literal["tls", "starttls", "none"] = "tls"
    tls_ca_file: Path | None = None  # a private CA (PEM) for a server no public CA signed
    username: str
    password: SecretStr
    # Folders to follow; by default INBOX and the folder the server marks \Sent (SPECIAL-USE).
    folders: list[str] = Field(default_factory=list)
    poll_seconds: float = Field(60.0, gt=0)  # where the server offers no IDLE
    idle_seconds: float = Field(25 * 60.0, gt=0, le=29 * 60.0)  # IDLE is re-issued before 29 minutes
    timeout_seconds: float = Field(30.0, gt=0)
    reconnect_min_seconds: float = Field(1.0, gt=0)
    reconnect_max_seconds: float = Field(300.0, gt=0)
    smtp: SmtpSettings | None = None

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


class MailSettings(BaseModel):
    """Rules for all mailboxes: ``[mail]``."""

    model_config = ConfigDict(extra="forbid")

    own_domains: list[str] = Field(default_factory=list)  # the company's: never filed as a client's
    thread_window_days: int = Field(30, ge=1)
    attachment_max_bytes: int = Field(25 * 1024 * 1024, ge=0)

    @field_validator("own_domains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [d.strip().lower().lstrip("@") for d in value if d.strip()]


class WebhookSettings(BaseModel):
    """Outgoing webhooks: ``[webhooks]``."""

    model_config = ConfigDict(extra="forbid")

    allow_private: bool = False  # let subscriptions target private and loopback addresses (a LAN receiver)
    timeout_seconds: float = Field(10.0, gt=0)
    concurrency: int = Field(8, ge=1, le=256)


class DkimSettings(BaseModel):
    """Signing campaign mail: the DNS TXT record ``<selector>._domainkey.<domain>`` holds the public key."""

    model_config = ConfigDict(extra="forbid")

    domain: str
    selector: str = Field(pattern=r"^[A-Za-z0-9._-]{1,63}$")
    private_key_file: Path


class CampaignSettings(BaseModel):
    """Tracked mailings: ``[campaigns]``."""

    model_config = ConfigDict(extra="forbid")

    # Where campaigns go out: this server, else the campaign's mailbox's [mailbox.smtp].
    smtp: SmtpSettings | None = None
    concurrency: int = Field(4, ge=1, le=64)  # SMTP connections at once
    rate_per_second: int | None = Field(None, ge=1)
    rate_per_minute: int | None = Field(None, ge=1)
    rate_per_hour: int | None = Field(None, ge=1)
    tracking_url: str = ""  # the hub as recipients reach it (tracking links); default: public_url
    # The envelope sender, where bounces go: default the bounce mailbox's address, else the From.
    bounce_address: str = ""
    unsubscribe_mailto: str = ""  # the List-Unsubscribe mailto; default: the bounce address
    bounce_mailbox: MailboxSettings | None = None  # read for bounces and complaints
    soft_bounce_limit: int = Field(3, ge=1)  # soft bounces of one address before it is suppressed
    apple_networks_file: Path | None = None  # Apple's egress-ip-ranges.csv (Mail Privacy Protection)
    scanner_networks_file: Path | None = None  # link scanners' networks, one CIDR per line
    dkim: DkimSettings | None = None
    # Worker processes that render, compose and sign the copies; 0: a thread of the hub's process.
    # Default: with a DKIM key one per core but one (at most four), else 0 (hub.campaign_copies).
    copy_processes: int | None = Field(None, ge=0, le=32)
    # Opens and clicks stored by a recorder process beside the hub's (true), or by the hub's own
    # process (false).  Default: a process when the machine has more than one core (hub.hit_recorder).
    hit_recorder_process: bool | None = None


DEFAULT_DOCUMENTS = ["Document_СчетНаОплатуПокупателю", "Document_РеализацияТоваровУслуг"]


class OnecSettings(BaseModel):
    """One 1C infobase the hub keeps counterparties in sync with: a ``[[onec]]`` table."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    url: str = Field(pattern=r"^https?://")  # the publication: http://1c.local/accounting
    user: str  # an infobase user; Cyrillic names are fine
    password: SecretStr = SecretStr("")
    kind: Literal["accounting_3", "trade_11"] = "accounting_3"  # Enterprise Accounting 3.0, Trade Management 11
    field_map: dict[str, str] = Field(default_factory=dict)  # sync field -> the catalogue's property
    # Per field, who wins when both sides changed it: ask (a conflict for a user), onec, hub, union (lists).
    rules: dict[str, Literal["ask", "onec", "hub", "union"]] = Field(default_factory=dict)
    interval_minutes: float = Field(15.0, ge=0)  # 0: only on demand
    create_in_onec: bool = True  # cards made in the hub become counterparties in 1C
    create_in_hub: bool = True  # counterparties made in 1C become cards
    folder: str | None = None  # the 1C folder new counterparties go in, as a path: "Покупатели / Москва"
    page_size: int = Field(1000, ge=10, le=10000)
    concurrency: int = Field(2, ge=1, le=4)
    timeout_seconds: float = Field(120.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    documents: list[str] = Field(default_factory=lambda: list(DEFAULT_DOCUMENTS))  # shown on the card
    documents_days: int = Field(90, ge=1)
    documents_cache_seconds: float = Field(60.0, ge=0)

    @field_validator("rules")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
        for name, rule in value.items():
            if rule == "union" and name not in LIST_FIELDS:
                raise ValueError(f"{name}: 'union' is for phones and emails")
        return value

    @field_validator("field_map")
    @classmethod
    def _known_properties(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(OVERRIDABLE))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(OVERRIDABLE)}")
        return value


class ScreenPopSettings(BaseModel):
    """When an operator's screen pops: as the phone rings (default) or once they answer."""

    model_config = ConfigDict(extra="forbid")

    default: Literal["ring", "answer"] = "ring"
    queues: dict[str, Literal["ring", "answer"]] = Field(default_factory=dict)

    def moment_for(self, queue: str | None) -> str:
        return self.queues.get(queue, self.default) if queue else self.default


class Settings(BaseSettings):
    """Everything the hub can be told.  Unknown keys are errors, so typos surface."""

    model_config = SettingsConfigDict(
        env_prefix="HUB_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Path("./var")
    database_url: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=1, le=65535)
    public_url: str = ""
    # Reverse proxies whose X-Forwarded-For is believed (nginx: deploy/nginx/hub.conf), as CIDRs.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    secret_key: SecretStr | None = None
    default_region: str = "RU"
    phone_suffix_digits: int = Field(10, ge=4, le=15)
    email_plus_folding: bool = False
    log_level: str = "INFO"
    log_format: str = Field("text", pattern="^(text|json)$")
    session_hours: int = Field(12, ge=1)
    metrics_token: SecretStr | None = None
    login_limits: LoginLimits = LoginLimits()
    pbx: list[PbxSettings] = Field(default_factory=list)
    screen_pop: ScreenPopSettings = ScreenPopSettings()
    mailbox: list[MailboxSettings] = Field(default_factory=list)
    mail: MailSettings = MailSettings()
    webhooks: WebhookSettings = WebhookSettings()
    campaigns: CampaignSettings = CampaignSettings()
    onec: list[OnecSettings] = Field(default_factory=list)

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return _region(value)

    @field_validator("pbx")
    @classmethod
    def _unique_pbx_names(cls, value: list[PbxSettings]) -> list[PbxSettings]:
        names = [p.name for p in value]
        if len(names) != len(set(names)):
            raise ValueError("each [[pbx]] needs a name of its own")
        return value

    @field_validator("mailbox")
    @classmethod
    def _unique_mailbox_names(cls, value: list[MailboxSettings]) -> list[MailboxSettings]:
        names = [m.name for m in value]
        if len(names) != len(set(names)):
            raise ValueError("each [[mailbox]] needs a name of its own")
        return value

    @field_validator("onec")
    @classmethod
    def _unique_onec_names(cls, value: list[OnecSettings]) -> list[OnecSettings]:
        names = [o.name for o in value]
        if len(names) != len(set(names)):
            raise ValueError("each [[onec]] needs a name of its own")
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite+aiosqlite:// and postgresql+asyncpg:// URLs are supported")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("use DEBUG, INFO, WARNING or ERROR")
        return level

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init arguments (see load_settings); the
        # environment is listed first so that it wins over the file.
        return (_ListItemsFromEnv(settings_cls, env_settings, init_settings), init_settings)

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or SQLite in the data dir when none is configured."""
        if self.database_url:
            return _normalise_driver(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'hub.db').resolve()}"

    @property
    def uses_embedded_database(self) -> bool:
        return not self.database_url

    def signing_key(self) -> bytes:
        """The key for signed tokens: from config, else generated once into the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / SECRET_KEY_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()


def _region(value: str) -> str:
    region = value.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {value!r}; use a two-letter code such as RU")
    return region


def _normalise_driver(url: str) -> str:
    """Accept the plain scheme names people paste and pick the async drivers."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


class _ListItemsFromEnv(PydanticBaseSettingsSource):
    """The environment, where ``HUB_ONEC__0__PASSWORD`` sets a key of the file's first ``[[onec]]``.

    Plain nesting would read that as a mapping ``{"0": ...}`` and replace the file's list with it.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource, file: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self._env, self._file = env, file

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ does the work

    def __call__(self) -> dict[str, Any]:
        values = self._env()
        given = self._file()
        for name, value in values.items():
            if isinstance(value, dict) and value and all(str(k).isdigit() for k in value):
                items = [dict(item) for item in given.get(name) or []]
                for index, fields in sorted(value.items(), key=lambda kv: int(kv[0])):
                    while len(items) <= int(index):
                        items.append({})
                    items[int(index)] = {**items[int(index)], **fields}
                values[name] = items
        return values


def load_settings(path: str | Path | None = None) -> Settings:
    """Read the file named (or ``$HUB_CONFIG``), then the environment; raise ConfigError."""
    chosen = path or os.environ.get(CONFIG_ENV)
    file_path = Path(chosen) if chosen else None
    values = _read_toml(file_path) if file_path is not None else {}
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, file_path)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def describe_validation_error(exc: ValidationError, path: Path | None) -> str:
    """One line per problem, naming the key as it is written in the file."""
    where = f"{path}: " if path else ""
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown setting"
        value = err.get("input")
        shown = "" if err["type"] == "extra_forbidden" or isinstance(value, dict) else f" (got {value!r})"
        if "secret" in key or "token" in key:
            shown = ""
        lines.append(f"{where}{key}: {message}{shown}")
    return "\n".join(lines)
