"""A Prometheus token leaves the operator only for a URL an admin allowed on its Secret."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ftmoe.operator.credentials import ALLOWED_URLS, CREDENTIAL_LABEL, CredentialError, token_for, url_within


def secret(labelled: bool = True, allowed: str | None = "https://prometheus.monitoring:9090", key: str = "token") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "prom", "namespace": "ftmoe-system"}
    if labelled:
        meta["labels"] = {CREDENTIAL_LABEL: "true"}
    if allowed is not None:
        meta["annotations"] = {ALLOWED_URLS: allowed}
    return {"metadata": meta, "data": {key: base64.b64encode(b"s3cret\n").decode()}}


def test_a_marked_secret_gives_its_token_to_an_allowed_url() -> None:
    assert token_for(secret(), "token", "https://prometheus.monitoring:9090") == "s3cret"
    assert token_for(secret(allowed="http://a:9090, https://prometheus.monitoring:9090/"), "token", "https://prometheus.monitoring:9090/")


@pytest.mark.parametrize(
    ("s", "url", "says"),
    [
        (secret(labelled=False), "https://prometheus.monitoring:9090", CREDENTIAL_LABEL),
        (secret(allowed=None), "https://prometheus.monitoring:9090", "empty or missing"),
        (secret(), "https://attacker.example:9090", "not among them"),
        (secret(), "http://prometheus.monitoring:9090", "not among them"),
        (secret(), "https://prometheus.monitoring:9091", "not among them"),
        (secret(key="other"), "https://prometheus.monitoring:9090", "no key 'token'"),
    ],
)
def test_anything_else_is_refused_with_what_to_change(s: dict[str, Any], url: str, says: str) -> None:
    with pytest.raises(CredentialError, match=says):
        token_for(s, "token", url)


def test_url_prefixes_match_whole_parts() -> None:
    assert url_within("https://p:9090/prom/api", "https://p:9090/prom")
    assert url_within("https://p/x", "https://p:443")
    assert not url_within("https://p:9090/prometheus", "https://p:9090/prom")  # a sibling path, not below it
    assert not url_within("https://p.evil:9090", "https://p:9090")
    assert not url_within("https://user:pw@p:9090", "https://p:9090")
    assert not url_within("ftp://p:9090", "ftp://p:9090")
    assert not url_within("https://p:notaport", "https://p:9090")
