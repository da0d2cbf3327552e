"""Signatures as the Standard Webhooks libraries make and check them."""

from __future__ import annotations

import base64

import pytest

from carcloud.webhooks.models import new_secret
from carcloud.webhooks.signing import signature, signed_headers, signing_key
from tests.webhooks.receiver import Received, verify


def test_the_specifications_test_vector() -> None:
    # The vector of the Standard Webhooks reference libraries.
    assert (
        signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_new_secrets_are_32_random_bytes_in_base64() -> None:
    first, second = new_secret(), new_secret()
    assert first != second and first.startswith("whsec_")
    assert len(signing_key(first)) == 32
    assert signing_key(first) == base64.b64decode(first.removeprefix("whsec_"))
    with pytest.raises(ValueError, match="whsec_"):
        signing_key("secret")


def test_a_receiver_refuses_a_changed_body_or_an_old_timestamp() -> None:
    import time

    secret = new_secret()
    now = int(time.time())
    headers = signed_headers(secret, "msg_1", now, b'{"a":1}')
    assert headers["content-type"] == "application/json"
    assert verify(secret, Received("/", headers, b'{"a":1}', 0.0))
    assert not verify(secret, Received("/", headers, b'{"a":2}', 0.0))
    old = signed_headers(secret, "msg_1", now - 600, b'{"a":1}')
    assert not verify(secret, Received("/", old, b'{"a":1}', 0.0))
