from escalation.models.rules import EscalationLevel, EscalationRule, EscalationState, Timer

__all__ = ["EscalationLevel", "EscalationRule", "EscalationState", "Timer"]
