"""Commands a car was sent and never answered for good: sent again a few times, then left."""

from __future__ import annotations

from carcloud.commands.redelivery import Unanswered

VIN = "WZV0000000000TST1"


def test_a_command_is_sent_again_after_growing_pauses_and_then_left() -> None:
    now = [0.0]
    unanswered = Unanswered(delays_s=(5.0, 15.0, 45.0), clock=lambda: now[0])
    unanswered.sent(VIN, "cmd_a")
    unanswered.sent(VIN, "cmd_a")  # sent twice, followed once
    assert unanswered.due() == [] and len(unanswered) == 1
    sends = []
    for step in range(70):
        now[0] = float(step)
        sends += [(now[0], due) for due in unanswered.due()]
    assert sends == [(5.0, (VIN, "cmd_a")), (20.0, (VIN, "cmd_a")), (65.0, (VIN, "cmd_a"))]
    assert len(unanswered) == 0


def test_a_final_command_is_forgotten_and_the_followed_are_bounded() -> None:
    now = [0.0]
    unanswered = Unanswered(delays_s=(1.0,), limit=2, clock=lambda: now[0])
    for command_id in ("cmd_a", "cmd_b", "cmd_c"):
        unanswered.sent(VIN, command_id)
    assert len(unanswered) == 2  # the third waits for a reconnect instead
    unanswered.forget("cmd_a")
    now[0] = 1.0
    assert unanswered.due() == [(VIN, "cmd_b")]
    assert len(unanswered) == 0
