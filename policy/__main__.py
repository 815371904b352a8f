"""The policy pack the Pulumi CLI runs: `pulumi preview --policy-pack policy` (rules in guardrails.py)."""

from guardrails import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

# Constructing the pack serves it to the engine (it blocks), so this file does nothing else.
PolicyPack(name="dataplatform-guardrails", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
