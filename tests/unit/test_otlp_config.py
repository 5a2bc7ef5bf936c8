"""Where spans are sent: OTel's standard variables, the Respan shortcut, and no secrets in logs."""

from __future__ import annotations

import logging

import pytest
from batchtrace.errors import InputError
from batchtrace.send.otlp_config import DEFAULT_ENDPOINT, OtlpConfig

SECRET = "sk-live-9f8e7d6c5b4a"


def test_default_is_a_local_collector() -> None:
    """With nothing configured, spans go to a local OTLP/HTTP collector, uncompressed, 10 s timeout."""
    config = OtlpConfig.resolve(env={})
    assert config.endpoint == DEFAULT_ENDPOINT == "http://localhost:4318/v1/traces"
    assert dict(config.headers) == {}
    assert config.compression == "none"
    assert config.timeout_s == 10.0


def test_endpoint_precedence() -> None:
    """argument > OTEL_EXPORTER_OTLP_TRACES_ENDPOINT > OTEL_EXPORTER_OTLP_ENDPOINT (+/v1/traces) > Respan > default."""
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example.com/custom/path",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example.com:4318",
        "RESPAN_API_KEY": SECRET,
    }
    assert OtlpConfig.resolve(endpoint="https://arg.example.com/v1/traces", env=env).endpoint == (
        "https://arg.example.com/v1/traces"
    )
    assert OtlpConfig.resolve(env=env).endpoint == "https://traces.example.com/custom/path"
    del env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    assert OtlpConfig.resolve(env=env).endpoint == "https://collector.example.com:4318/v1/traces"
    del env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert OtlpConfig.resolve(env=env).endpoint == "https://api.respan.ai/api/v2/traces"
    del env["RESPAN_API_KEY"]
    assert OtlpConfig.resolve(env=env).endpoint == DEFAULT_ENDPOINT


@pytest.mark.parametrize("base", ["http://collector:4318", "http://collector:4318/"])
def test_generic_endpoint_gets_the_traces_path_once(base: str) -> None:
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` is a base URL: ``/v1/traces`` is appended without a double slash."""
    assert OtlpConfig.resolve(env={"OTEL_EXPORTER_OTLP_ENDPOINT": base}).endpoint == "http://collector:4318/v1/traces"


def test_empty_variables_are_unset() -> None:
    """A variable set to an empty string (common in templates) does not override the next choice."""
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": " ", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert OtlpConfig.resolve(env=env).endpoint == "http://c:4318/v1/traces"


def test_respan_key_sets_endpoint_and_bearer_header() -> None:
    """``RESPAN_API_KEY`` alone sends to Respan's ``/v2/traces`` with ``Authorization: Bearer <key>``."""
    config = OtlpConfig.resolve(env={"RESPAN_API_KEY": SECRET})
    assert config.endpoint == "https://api.respan.ai/api/v2/traces"
    assert {k.lower(): v for k, v in config.headers.items()}["authorization"] == f"Bearer {SECRET}"


def test_respan_base_url_is_honoured() -> None:
    """``RESPAN_BASE_URL`` (self-hosted or regional) replaces the default base."""
    env = {"RESPAN_API_KEY": SECRET, "RESPAN_BASE_URL": "https://eu.respan.example/api/"}
    assert OtlpConfig.resolve(env=env).endpoint == "https://eu.respan.example/api/v2/traces"


def test_respan_key_argument_stands_in_for_the_variable() -> None:
    """A key fetched from Secrets Manager and passed in works like ``RESPAN_API_KEY``."""
    config = OtlpConfig.resolve(respan_api_key=SECRET, env={})
    assert config.endpoint.endswith("/v2/traces")
    assert {k.lower(): v for k, v in config.headers.items()}["authorization"] == f"Bearer {SECRET}"


def test_headers_from_env_in_w3c_baggage_format() -> None:
    """``OTEL_EXPORTER_OTLP_HEADERS`` is ``k=v,k2=v2`` with URL-encoded values, decoded before sending."""
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc%20def%2Cghi, Authorization=Basic%20dXNlcjpwYXNz ,x-team=ml"}
    headers = {k.lower(): v for k, v in OtlpConfig.resolve(env=env).headers.items()}
    assert headers == {"x-api-key": "abc def,ghi", "authorization": "Basic dXNlcjpwYXNz", "x-team": "ml"}


def test_traces_headers_win_over_generic_headers() -> None:
    """``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` is used instead of the generic ``OTEL_EXPORTER_OTLP_HEADERS``."""
    env = {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-a=traces", "OTEL_EXPORTER_OTLP_HEADERS": "x-a=generic"}
    headers = {k.lower(): v for k, v in OtlpConfig.resolve(env=env).headers.items()}
    assert headers["x-a"] == "traces"


def test_header_argument_wins_over_env_headers() -> None:
    """Headers passed in override same-named headers from the environment."""
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "x-a=env,x-b=env"}
    headers = {k.lower(): v for k, v in OtlpConfig.resolve(headers={"X-A": "arg"}, env=env).headers.items()}
    assert headers == {"x-a": "arg", "x-b": "env"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "none"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, "gzip"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "GZIP"}, "gzip"),
        ({"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "deflate", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, "deflate"),
    ],
)
def test_compression(env: dict[str, str], expected: str) -> None:
    """Compression comes from the traces variable, else the generic one, case-insensitively."""
    assert OtlpConfig.resolve(env=env).compression == expected


@pytest.mark.parametrize(
    ("kwargs", "env"),
    [
        ({"compression": "brotli"}, {}),
        ({}, {"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "ten"}),
        ({}, {"OTEL_EXPORTER_OTLP_TIMEOUT": "0"}),
        ({}, {"OTEL_EXPORTER_OTLP_TIMEOUT": "-3"}),
        ({"timeout_s": 0.0}, {}),
        ({"timeout_s": -1.0}, {}),
        ({"endpoint": "collector:4318/v1/traces"}, {}),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://collector:4317"}),
    ],
)
def test_invalid_settings_are_input_errors_with_one_line_messages(
    kwargs: dict[str, object], env: dict[str, str]
) -> None:
    """A bad compression, timeout or endpoint fails up front (exit 2) with a one-line reason."""
    with pytest.raises(InputError) as caught:
        OtlpConfig.resolve(env=env, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message
    assert "\n" not in message


def test_timeout_in_seconds() -> None:
    """Timeouts are seconds (as the Python SDK reads them); the traces variable wins."""
    assert OtlpConfig.resolve(env={"OTEL_EXPORTER_OTLP_TIMEOUT": "5"}).timeout_s == 5.0
    env = {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2.5", "OTEL_EXPORTER_OTLP_TIMEOUT": "5"}
    assert OtlpConfig.resolve(env=env).timeout_s == 2.5
    assert OtlpConfig.resolve(timeout_s=30.0, env=env).timeout_s == 30.0


def test_non_finite_timeout_is_an_input_error() -> None:
    """A timeout that is not a finite number of seconds is rejected up front, not at send time."""
    with pytest.raises(InputError):
        OtlpConfig.resolve(env={"OTEL_EXPORTER_OTLP_TIMEOUT": "nan"})


def test_repr_never_shows_header_values() -> None:
    """The resolved config is logged; its repr/str must not contain any header value (API keys)."""
    env = {"RESPAN_API_KEY": SECRET, "OTEL_EXPORTER_OTLP_HEADERS": "x-other-key=hdr-secret-123"}
    config = OtlpConfig.resolve(env=env)
    assert f"Bearer {SECRET}" in config.headers.values()
    for text in (repr(config), str(config), f"{config}", f"{config!r}"):
        assert SECRET not in text
        assert "hdr-secret-123" not in text


def test_invalid_setting_messages_do_not_echo_secrets() -> None:
    """An InputError raised while a key is configured does not repeat the key."""
    with pytest.raises(InputError) as caught:
        OtlpConfig.resolve(
            compression="bogus", env={"RESPAN_API_KEY": SECRET, "OTEL_EXPORTER_OTLP_HEADERS": f"k={SECRET}"}
        )
    assert SECRET not in str(caught.value)


def test_malformed_env_header_does_not_leak_its_value_into_logs(caplog: pytest.LogCaptureFixture) -> None:
    """A header that cannot be parsed is reported without its value: secrets never reach a log line."""
    env = {"OTEL_EXPORTER_OTLP_HEADERS": f'authorization=Bearer "{SECRET}"'}
    caplog.set_level(logging.DEBUG)
    try:
        OtlpConfig.resolve(env=env)
    except InputError as err:
        assert SECRET not in str(err)
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert SECRET not in logged
