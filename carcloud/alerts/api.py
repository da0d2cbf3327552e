"""Alert rules and alerts over REST, scoped by brand like every read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from carcloud.alerts.builtins import BUILTINS, builtin
from carcloud.alerts.models import AlertRule, Target, alert_document, rule_document
from carcloud.api.security import CurrentPrincipal, CurrentServices, Principal
from carcloud.errors import ValidationError
from carcloud.timeutil import format_us, parse_rfc3339_us
from carcloud.vin import Vin

router = APIRouter()


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, description="every tag listed must be on the car")
    vins: list[str] = Field(default_factory=list)


class AlertRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="default: the built-in rule's name")
    brand: str | None = Field(default=None, description="Required with an operator key")
    builtin: str | None = Field(
        default=None, description="start from a built-in rule (GET /alert-rules/builtins)"
    )
    kind: str | None = Field(default=None, description="condition (default), offline or dtc")
    condition: str | None = Field(default=None, examples=["Vehicle.Speed > 130"])
    for_s: float | None = Field(default=None, description="hold this long before raising")
    clear_condition: str | None = Field(
        default=None, description="default: the condition no longer holds"
    )
    severity: str | None = Field(default=None, description="info, warning (default), critical")
    target: TargetIn = Field(default_factory=TargetIn)
    enabled: bool = True


def _draft(body: AlertRuleIn, who: Principal) -> AlertRule:
    brand = body.brand or who.brand
    if brand is None:
        raise ValidationError("brand: an operator key must name the rule's brand")
    who.check_brand(brand)
    base = builtin(body.builtin) if body.builtin is not None else None
    given = body.model_fields_set

    def pick(name: str, default: Any) -> Any:
        """A field as given; else the built-in's; else the default."""
        if name in given:
            return getattr(body, name)
        return getattr(base, name) if base is not None else default

    name = body.name if body.name is not None else (base.name if base is not None else None)
    if name is None:
        raise ValidationError("name: a rule needs a name (or a builtin)")
    return AlertRule(
        id="new",
        brand=brand,
        name=name,
        kind=pick("kind", "condition"),
        condition=pick("condition", None),
        for_s=pick("for_s", 0.0),
        clear_condition=pick("clear_condition", None),
        severity=pick("severity", "warning"),
        target=Target(tuple(body.target.models), tuple(body.target.tags), tuple(body.target.vins)),
        enabled=body.enabled,
        builtin=body.builtin,
    )


@router.get("/alert-rules/builtins", tags=["alerts"])
async def list_builtins(who: CurrentPrincipal) -> dict[str, Any]:
    """The built-in rules a brand can turn on, with their defaults."""
    return {
        "builtins": [
            {
                "builtin": rule.key,
                "name": rule.name,
                "description": rule.description,
                "kind": rule.kind,
                "condition": rule.condition,
                "for_s": rule.for_s,
                "clear_condition": rule.clear_condition,
                "severity": rule.severity,
            }
            for rule in BUILTINS.values()
        ]
    }


@router.get("/alert-rules", tags=["alerts"])
async def list_rules(who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """Alert rules the caller may see, oldest first."""
    return {"rules": [rule_document(rule) for rule in await svc.alerts.list_rules(who.brand)]}


@router.post("/alert-rules", tags=["alerts"], status_code=status.HTTP_201_CREATED)
async def create_rule(
    body: AlertRuleIn, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Create a rule (a condition on signals, or a built-in turned on for the brand)."""
    return rule_document(await svc.alerts.create_rule(_draft(body, who)))


@router.get("/alert-rules/{rule_id}", tags=["alerts"])
async def get_rule(rule_id: str, who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """One rule."""
    return rule_document(await svc.alerts.get_rule(rule_id, who.brand))


@router.put("/alert-rules/{rule_id}", tags=["alerts"])
async def replace_rule(
    rule_id: str, body: AlertRuleIn, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Replace a rule (id, brand, creation time and its state stay); `enabled` turns it off."""
    return rule_document(await svc.alerts.replace_rule(rule_id, who.brand, _draft(body, who)))


@router.delete("/alert-rules/{rule_id}", tags=["alerts"])
async def delete_rule(rule_id: str, who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """Delete a rule; its open alerts are cleared."""
    return rule_document(await svc.alerts.delete_rule(rule_id, who.brand))


@router.get("/alert-rules/{rule_id}/states/{vin}", tags=["alerts"])
async def rule_states(
    rule_id: str, vin: str, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Where a rule stands for a vehicle: the car time evaluated up to, the `for` timer
    (`pending_since`), the open alert; a `dtc` rule has one more per trouble code."""
    states = await svc.alerts.rule_states(rule_id, who.brand, str(Vin.parse(vin)))
    return {
        "states": [
            {
                "key": state.key or None,
                "evaluated_at": format_us(state.evaluated_ts),
                "pending_since": format_us(state.pending_since)
                if state.pending_since is not None
                else None,
                "alert_id": state.alert_id,
            }
            for state in states
        ]
    }


@router.get("/alerts", tags=["alerts"])
async def list_alerts(
    who: CurrentPrincipal,
    svc: CurrentServices,
    status: Annotated[
        str | None, Query(description="active, acknowledged, cleared, or open (not cleared)")
    ] = None,
    vin: str | None = None,
    rule_id: str | None = None,
    before: Annotated[str | None, Query(description="RFC 3339: raised before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """Alerts newest first."""
    alerts = await svc.alerts.list_alerts(
        who.brand,
        status,
        str(Vin.parse(vin)) if vin is not None else None,
        rule_id,
        parse_rfc3339_us(before, "before") if before is not None else None,
        limit,
    )
    return {"alerts": [alert_document(alert) for alert in alerts]}


@router.get("/alerts/{alert_id}", tags=["alerts"])
async def get_alert(alert_id: str, who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """One alert."""
    return alert_document(await svc.alerts.get_alert(alert_id, who.brand))


@router.post("/alerts/{alert_id}/acknowledge", tags=["alerts"])
async def acknowledge(alert_id: str, who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """Acknowledge an active alert (the API key's name is kept as who); 409 if it is not."""
    return alert_document(await svc.alerts.acknowledge(alert_id, who.brand, who.name))
