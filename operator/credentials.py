"""Which Prometheus credential a policy may use, and where it may be sent.

Whoever may create a FaultTolerancePolicy names the URL the operator queries. If the policy
could also name any file or Secret, it could make the operator send that credential (its
own ServiceAccount token, say) to a URL of its choosing. So a bearer token comes only from
a Secret in the operator's namespace that an admin marked for it: label
``ftmoe.io/prometheus-credential=true``, and annotation ``ftmoe.io/allowed-urls`` listing
the Prometheus URLs (comma-separated prefixes) it may be sent to. docs/threat-model.md.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

CREDENTIAL_LABEL = "ftmoe.io/prometheus-credential"
ALLOWED_URLS = "ftmoe.io/allowed-urls"
_PORTS = {"http": 80, "https": 443}


class CredentialError(Exception):
    """A credential the operator will not use; the message says what an admin must change."""


def token_for(secret: dict[str, Any], key: str, url: str) -> str:
    """The token in ``secret[key]``, if the Secret is marked for Prometheus and ``url`` is allowed."""
    meta = secret.get("metadata") or {}
    ref = f"Secret {meta.get('namespace')}/{meta.get('name')}"
    if (meta.get("labels") or {}).get(CREDENTIAL_LABEL) != "true":
        raise CredentialError(
            f"{ref} is not marked as a Prometheus credential: an admin labels it {CREDENTIAL_LABEL}=true and "
            f"annotates {ALLOWED_URLS} with the Prometheus URLs it may be sent to"
        )
    allowed = [a.strip() for a in ((meta.get("annotations") or {}).get(ALLOWED_URLS) or "").split(",") if a.strip()]
    if not any(url_within(url, prefix) for prefix in allowed):
        listed = ", ".join(allowed) if allowed else f"none (annotation {ALLOWED_URLS} is empty or missing)"
        raise CredentialError(f"{ref} may be sent only to {listed}; spec.prometheus.url {url} is not among them")
    data = secret.get("data") or {}
    if key not in data:
        raise CredentialError(f"{ref} has no key {key!r} (spec.prometheus.bearerTokenSecret.key)")
    return base64.b64decode(data[key]).decode().strip()


def url_within(url: str, prefix: str) -> bool:
    """Same scheme, host and port, and a path at or below the prefix's (by whole segments)."""
    u, p = urlsplit(url), urlsplit(prefix)
    if u.scheme not in _PORTS or p.scheme != u.scheme or u.username or u.password:
        return False
    try:
        same_host = (u.hostname, u.port or _PORTS[u.scheme]) == (p.hostname, p.port or _PORTS[p.scheme])
    except ValueError:  # a port that is not a number
        return False
    path, base = u.path.rstrip("/"), p.path.rstrip("/")
    return same_host and (path == base or path.startswith(base + "/"))
