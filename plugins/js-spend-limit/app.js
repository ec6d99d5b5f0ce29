// js-spend-limit: the spend-limit policy in JavaScript (componentize-js).
// Invocations priced above 100 scrip and transfers above 1,000 scrip are
// denied with a reason naming the limit; everything else is allowed.
// Prices are u64, so they arrive as BigInt.

const LIMITS = { invoke: 100n, transfer: 1000n };

export const policy = {
  check(action) {
    const limit = LIMITS[action.kind];
    if (limit === undefined || action.price <= limit) {
      return { tag: "allow" };
    }
    return {
      tag: "deny",
      val: `spend limit: ${action.kind} of ${action.target} costs ${action.price} scrip, over the limit of ${limit} per ${action.kind}`,
    };
  },
};
