"""Configuration (SPEC §3.1): every environment variable parsed and validated here, once."""

from __future__ import annotations

import base64
import binascii
import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import attrs

from core.forge_manifest import is_forge_app_id
from core.model.host_patterns import HostPattern, parse_host_patterns
from core.model.settings import AppSettings

PREFIX = "SENTRY_JIRA_"
DEFAULT_JIRA_HOSTS = "https://*.atlassian.net,https://*.jira.com"
DEFAULT_INSTALL_KEYS_URL = "https://connect-install-keys.atlassian.com"
# §8.2, §3.1: where Atlassian publishes the keys of Forge Invocation Tokens.
DEFAULT_FORGE_JWKS_URL = "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json"
DEFAULT_FORGE_API_HOSTS = "https://api.atlassian.com"
FORGE_ENVIRONMENT = re.compile(r"[A-Z][A-Z_]{0,31}")

# SPEC §3.1: every variable this service reads (README's configuration table lists exactly
# these; tests/adapters/test_config_known.py checks that the two agree).
KNOWN_VARIABLES: tuple[str, ...] = tuple(
    PREFIX + name
    for name in (
        "BASE_URL",
        "APP_KEY",
        "APP_NAME",
        "DATABASE",
        "SECRET_KEY",
        "INSTALL_KEYS_URL",
        "JIRA_HOSTS",
        "ADMIN_TOKEN",
        "USE_EMAIL_SCOPE",
        "JWT_LEEWAY_SECONDS",
        "HTTP_TIMEOUT_SECONDS",
        "SENTRY_HOSTS",
        "RETRY_BASE_SECONDS",
        "MAX_ATTEMPTS",
        "MAX_BODY_BYTES",
        "RETENTION_DAYS",
        "WORKER",
        "WORKER_LEASE_SECONDS",
        "SQLITE_SYNCHRONOUS",
        "DATABASE_POOL_SIZE",
        "SENTRY_TOKEN",
        "JIRA_CREDENTIAL",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "FORGE_APP_ID",
        "METRICS",
        "METRICS_TOKEN",
        "FORGE_JWKS_URL",
        "FORGE_ENVIRONMENT",
        "FORGE_API_HOSTS",
    )
)


class ConfigError(Exception):
    """A bad configuration value; the message is one line naming the variable."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable


@attrs.frozen
class Settings:
    """The whole configuration: the core's part plus what only adapters need."""

    app: AppSettings
    database: Path
    secret_keys: tuple[str, ...] = attrs.field(repr=False)  # () = use the key file
    install_keys_url: str = DEFAULT_INSTALL_KEYS_URL
    forge_jwks_url: str = DEFAULT_FORGE_JWKS_URL  # §8.2 SENTRY_JIRA_FORGE_JWKS_URL
    admin_tokens: tuple[str, ...] = attrs.field(default=(), repr=False)
    http_timeout_seconds: float = 10.0
    max_body_bytes: int = 5_242_880
    host: str = "127.0.0.1"
    port: int = 8080
    run_worker: bool = True  # `serve` runs the sync worker in-process (SENTRY_JIRA_WORKER)
    worker_lease_seconds: float = 30.0
    sqlite_synchronous: str = "NORMAL"  # or FULL: no committed transaction lost on power loss
    log_format: str = "text"  # or json (SENTRY_JIRA_LOG_FORMAT)
    log_level: str = "INFO"  # SENTRY_JIRA_LOG_LEVEL
    # §9: a `postgresql://` URL selects PostgreSQL (then `database` is unused); it may carry
    # a password, so it is never shown: `database_location` is the redacted form.
    postgres_url: str | None = attrs.field(default=None, repr=False)
    database_pool_size: int = 10  # SENTRY_JIRA_DATABASE_POOL_SIZE (PostgreSQL connections)
    # §3 GET /metrics: public (the default: "no auth"), token (a metrics or admin token) or
    # off (SENTRY_JIRA_METRICS); token and off are opt-in hardening.
    metrics: str = "public"
    metrics_tokens: tuple[str, ...] = attrs.field(default=(), repr=False)
    # §3: SENTRY_JIRA_* variables that are not ours, each with the closest known name.
    unknown_variables: tuple[tuple[str, str | None], ...] = ()

    @property
    def engine(self) -> str:
        """`postgresql` or `sqlite` (§9)."""
        return "sqlite" if self.postgres_url is None else "postgresql"

    @property
    def database_location(self) -> str:
        """Where the database is, safe to show anywhere: a SQLite path, or the PostgreSQL
        URL without its password (§9)."""
        if self.postgres_url is None:
            return str(self.database.absolute())
        return redacted_postgres_url(self.postgres_url)

    @property
    def metrics_route(self) -> str:
        """What /metrics is: `public` (the default, §3: no auth), `token` (401 without a
        metrics or admin token) or `off` (no route: 404). Configured tokens never change the
        mode; `token` with no token of either kind configured is `off`."""
        if self.metrics == "token" and not (self.metrics_tokens or self.admin_tokens):
            return "off"
        return self.metrics

    @property
    def key_file(self) -> Path:
        """Where the generated secret key lives when SENTRY_JIRA_SECRET_KEY is unset."""
        return self.database.with_name(self.database.name + ".key")

    @property
    def install_keys_timeout_seconds(self) -> float:
        return min(self.http_timeout_seconds, 3.0)


def load_settings(
    environ: Mapping[str, str], *, host: str = "127.0.0.1", port: int = 8080
) -> Settings:
    """Build Settings from the environment; raise ConfigError on the first bad value."""
    env = {k: v for k, v in environ.items() if k.startswith(PREFIX)}

    def get(name: str) -> str | None:
        value = env.get(PREFIX + name)
        return value.strip() if value is not None and value.strip() != "" else None

    base_url = _base_url(get("BASE_URL") or f"http://{_url_host(host)}:{port}")
    app_key = get("APP_KEY") or f"{urlsplit(base_url).hostname}.jira"
    if not _is_app_key(app_key):
        raise ConfigError(PREFIX + "APP_KEY", "use 1-64 letters, digits, '.', '-' or '_'")
    leeway = _int(PREFIX + "JWT_LEEWAY_SECONDS", get("JWT_LEEWAY_SECONDS"), 30, low=0, high=60)
    try:
        hosts: tuple[HostPattern, ...] = parse_host_patterns(
            get("JIRA_HOSTS") or DEFAULT_JIRA_HOSTS
        )
    except ValueError as err:
        raise ConfigError(PREFIX + "JIRA_HOSTS", str(err)) from None
    sentry_hosts_text = get("SENTRY_HOSTS")
    try:
        sentry_hosts = parse_host_patterns(sentry_hosts_text) if sentry_hosts_text else ()
    except ValueError as err:
        raise ConfigError(PREFIX + "SENTRY_HOSTS", str(err)) from None
    forge_app_id = get("FORGE_APP_ID")
    if forge_app_id is not None and not is_forge_app_id(forge_app_id):
        raise ConfigError(PREFIX + "FORGE_APP_ID",
                          "expected the app ARI ari:cloud:ecosystem::app/<uuid> (lower-case)")
    forge_environment = (get("FORGE_ENVIRONMENT") or "PRODUCTION").upper()
    if not FORGE_ENVIRONMENT.fullmatch(forge_environment):
        raise ConfigError(PREFIX + "FORGE_ENVIRONMENT",
                          "expected an environment type such as PRODUCTION or DEVELOPMENT")
    try:
        forge_api_hosts = parse_host_patterns(get("FORGE_API_HOSTS") or DEFAULT_FORGE_API_HOSTS)
    except ValueError as err:
        raise ConfigError(PREFIX + "FORGE_API_HOSTS", str(err)) from None
    forge_jwks_url = get("FORGE_JWKS_URL") or DEFAULT_FORGE_JWKS_URL
    _jwks_url(PREFIX + "FORGE_JWKS_URL", forge_jwks_url)
    app = AppSettings(
        base_url=base_url,
        app_key=app_key,
        app_name=get("APP_NAME") or "Sentry",
        jira_hosts=hosts,
        sentry_hosts=sentry_hosts,
        use_email_scope=_bool(PREFIX + "USE_EMAIL_SCOPE", get("USE_EMAIL_SCOPE")),
        jwt_leeway_seconds=leeway,
        retry_base_seconds=_float(
            PREFIX + "RETRY_BASE_SECONDS", get("RETRY_BASE_SECONDS"), 2.0, low=0.01, high=3600
        ),
        max_attempts=_int(PREFIX + "MAX_ATTEMPTS", get("MAX_ATTEMPTS"), 12, low=1, high=100),
        retention_days=_int(
            PREFIX + "RETENTION_DAYS", get("RETENTION_DAYS"), 30, low=3, high=36500
        ),
        forge_app_id=forge_app_id,
        forge_environment=forge_environment,
        forge_api_hosts=forge_api_hosts,
    )
    database_text = get("DATABASE") or "./sentry-jira.db"
    postgres_url = _postgres_url(database_text)
    database = Path("./sentry-jira.db") if postgres_url is not None else Path(database_text)
    if postgres_url is None and database.is_dir():
        raise ConfigError(PREFIX + "DATABASE", "is a directory, expected a file path")
    secret_keys = _fernet_keys(get("SECRET_KEY"))
    if postgres_url is not None and not secret_keys:
        # §9: there is no file to put a generated key "beside".
        raise ConfigError(PREFIX + "SECRET_KEY",
                          "required with a PostgreSQL database (SENTRY_JIRA_DATABASE)")
    install_keys_url = get("INSTALL_KEYS_URL") or DEFAULT_INSTALL_KEYS_URL
    _plain_url(PREFIX + "INSTALL_KEYS_URL", install_keys_url)
    return Settings(
        app=app,
        database=database,
        secret_keys=secret_keys,
        postgres_url=postgres_url,
        database_pool_size=_int(
            PREFIX + "DATABASE_POOL_SIZE", get("DATABASE_POOL_SIZE"), 10, low=1, high=1000
        ),
        install_keys_url=install_keys_url.rstrip("/"),
        forge_jwks_url=forge_jwks_url,
        admin_tokens=_tokens(PREFIX + "ADMIN_TOKEN", get("ADMIN_TOKEN")),
        http_timeout_seconds=_float(
            PREFIX + "HTTP_TIMEOUT_SECONDS", get("HTTP_TIMEOUT_SECONDS"), 10.0, low=0.1, high=300
        ),
        max_body_bytes=_int(
            PREFIX + "MAX_BODY_BYTES", get("MAX_BODY_BYTES"), 5_242_880, low=1024, high=1 << 30
        ),
        host=host,
        port=port,
        run_worker=_bool(PREFIX + "WORKER", get("WORKER"), default=True),
        worker_lease_seconds=_float(
            PREFIX + "WORKER_LEASE_SECONDS", get("WORKER_LEASE_SECONDS"), 30.0, low=1, high=3600
        ),
        sqlite_synchronous=_choice(
            PREFIX + "SQLITE_SYNCHRONOUS", get("SQLITE_SYNCHRONOUS"), ("NORMAL", "FULL")
        ),
        log_format=_choice(PREFIX + "LOG_FORMAT", get("LOG_FORMAT"), ("TEXT", "JSON")).lower(),
        log_level=_choice(
            PREFIX + "LOG_LEVEL", get("LOG_LEVEL"), ("INFO", "DEBUG", "WARNING", "ERROR")
        ),
        metrics=_choice(PREFIX + "METRICS", get("METRICS"), ("PUBLIC", "TOKEN", "OFF")).lower(),
        metrics_tokens=_tokens(PREFIX + "METRICS_TOKEN", get("METRICS_TOKEN")),
        unknown_variables=unknown_variables(env),
    )


def unknown_variables(environ: Mapping[str, str]) -> tuple[tuple[str, str | None], ...]:
    """§3: every SENTRY_JIRA_* name that is not a known variable, with the closest known
    name (None when nothing is close)."""
    found: list[tuple[str, str | None]] = []
    for name in sorted(environ):
        if name.startswith(PREFIX) and name not in KNOWN_VARIABLES:
            # Compare what follows the prefix: the shared prefix would make anything close.
            known = [k.removeprefix(PREFIX) for k in KNOWN_VARIABLES]
            close = difflib.get_close_matches(name.removeprefix(PREFIX), known, n=1, cutoff=0.6)
            found.append((name, PREFIX + close[0] if close else None))
    return tuple(found)


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def _postgres_url(value: str) -> str | None:
    """§9: a `postgresql://` / `postgres://` URL (returned as given), None for a SQLite path;
    anything else with `://` is refused, never taken for a file name."""
    if "://" not in value:
        return None
    if not value.startswith(POSTGRES_SCHEMES):  # libpq reads these two, lower case
        scheme = value.split("://", 1)[0][:20]
        raise ConfigError(PREFIX + "DATABASE",
                          f"a {scheme!r} URL is not a database: use a SQLite file path or a "
                          "postgresql:// URL")
    try:
        parsed = _conninfo(value)
    except ValueError:
        # The message of a parse error may quote the URL (and its password): never shown.
        raise ConfigError(PREFIX + "DATABASE", "not a valid postgresql:// URL") from None
    del parsed  # read only to refuse what libpq cannot read
    return value


def _conninfo(url: str) -> dict[str, str]:
    """libpq's reading of a connection URL (raises ValueError when it cannot read it)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        return {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    except ProgrammingError as err:
        raise ValueError("unparsable connection URL") from err


def redacted_postgres_url(url: str) -> str:
    """The URL as libpq reads it, without the password wherever it was (user info or
    `?password=`): `postgresql://user@host:port/dbname?other=params`."""
    from urllib.parse import quote, urlencode

    try:
        info = _conninfo(url)
    except ValueError:
        return "postgresql://(unreadable URL)"
    info.pop("password", None)
    user = info.pop("user", None)
    host = info.pop("host", "")
    port = info.pop("port", None)
    dbname = info.pop("dbname", "")
    netloc = quote(host, safe="") if "/" in host else host
    if user:
        netloc = f"{quote(user, safe='')}@{netloc}"
    if port:
        netloc += f":{port}"
    query = "?" + urlencode(sorted(info.items())) if info else ""
    return f"postgresql://{netloc}/{quote(dbname, safe='')}{query}"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _plain_url(variable: str, value: str) -> None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(variable, "not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(variable, "must be an absolute http(s) URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(variable, "must not carry user info, a query or a fragment")


def _jwks_url(variable: str, value: str) -> None:
    """§8.2: the JWKS comes over https; plain http only to a loopback address literal (a
    test's key server on this machine), never to a name or a remote host."""
    _plain_url(variable, value)
    parts = urlsplit(value)
    if parts.scheme == "https":
        return
    if parts.hostname not in ("127.0.0.1", "::1"):
        raise ConfigError(variable, "must be an https URL (http only to 127.0.0.1 or [::1])")


def _base_url(value: str) -> str:
    _plain_url(PREFIX + "BASE_URL", value)
    return value.rstrip("/")


def _is_app_key(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in ".-_") for c in value)


def _int(variable: str, value: str | None, default: int, *, low: int, high: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(variable, f"expected an integer, got {value[:40]!r}") from None
    if not low <= number <= high:
        raise ConfigError(variable, f"must be between {low} and {high}")
    return number


def _float(variable: str, value: str | None, default: float, *, low: float, high: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(variable, f"expected a number, got {value[:40]!r}") from None
    if not low <= number <= high:
        raise ConfigError(variable, f"must be between {low} and {high}")
    return number


def _bool(variable: str, value: str | None, *, default: bool = False) -> bool:
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(variable, "expected true or false")


def _choice(variable: str, value: str | None, choices: tuple[str, ...]) -> str:
    if value is None:
        return choices[0]
    if value.upper() not in choices:
        raise ConfigError(variable, "expected one of " + ", ".join(c.lower() for c in choices))
    return value.upper()


def _tokens(variable: str, value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    tokens = tuple(t.strip() for t in value.split(","))
    if any(len(t) < 16 for t in tokens):
        raise ConfigError(variable, "each token must be at least 16 characters")
    return tokens


def _fernet_keys(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    keys = tuple(k.strip() for k in value.split(","))
    for key in keys:
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ConfigError(
                PREFIX + "SECRET_KEY",
                "each key must be a Fernet key (32 url-safe base64-encoded bytes)",
            )
    return keys


SQLITE_HEADER = b"SQLite format 3\x00"


def check_database_file(settings: Settings) -> None:
    """Start-up (§3): the configured database path must be usable before anything opens it —
    its directory exists, and a file already there is readable and is a SQLite database.
    Raise ConfigError (one line naming SENTRY_JIRA_DATABASE) otherwise."""
    if settings.postgres_url is not None:
        return  # §9: a server, not a file
    path = settings.database
    variable = PREFIX + "DATABASE"
    parent = path.absolute().parent
    if not parent.is_dir():
        raise ConfigError(variable, f"the directory {parent} does not exist; create it first")
    if not path.exists():
        return
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as err:
        raise ConfigError(variable, f"cannot read {path}: {err.strerror}") from None
    if header and header != SQLITE_HEADER:
        raise ConfigError(variable, f"{path} is not a SQLite database")
