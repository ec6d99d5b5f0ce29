"""python-spend-limit: the spend-limit policy in Python (componentize-py).

Invocations priced above 100 scrip and transfers above 1,000 scrip are
denied with a reason naming the limit; everything else is allowed.
"""

from wit_world import exports
from wit_world.imports.types import Action, Decision, Decision_Allow, Decision_Deny

LIMITS = {"invoke": 100, "transfer": 1000}


class Policy(exports.Policy):
    def check(self, action: Action) -> Decision:
        limit = LIMITS.get(action.kind)
        if limit is None or action.price <= limit:
            return Decision_Allow()
        return Decision_Deny(
            f"spend limit: {action.kind} of {action.target} costs {action.price} scrip, "
            f"over the limit of {limit} per {action.kind}"
        )
