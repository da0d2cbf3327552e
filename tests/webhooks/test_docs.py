"""The receiver example of docs/webhooks.md verifies what carcloud sends."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carcloud.webhooks.models import new_secret
from carcloud.webhooks.signing import signed_headers

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def documented_verify() -> Callable[..., bool]:
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None, "docs/webhooks.md lost its Python example"
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)
    verify: Callable[..., bool] = namespace["verify_webhook"]
    return verify


def test_the_documented_receiver_check() -> None:
    verify = documented_verify()
    secret, body = new_secret(), b'{"id":3,"type":"trip.completed"}'
    headers = signed_headers(secret, "msg_abc", int(time.time()), body)
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body + b" ")
    assert not verify(new_secret(), headers, body)
    stale = signed_headers(secret, "msg_abc", int(time.time()) - 3600, body)
    assert not verify(secret, stale, body)
    assert not verify(secret, {"webhook-id": "msg_abc"}, body)
    rotated = {**headers, "webhook-signature": "v1,bm90IGl0 " + headers["webhook-signature"]}
    assert verify(secret, rotated, body)
