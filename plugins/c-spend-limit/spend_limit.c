// c-spend-limit: the spend-limit policy in C (bindings from `wit-bindgen c`,
// compiled with clang against wasi-libc). Invocations priced above 100
// scrip and transfers above 1,000 scrip are denied with a reason naming
// the limit; everything else is allowed.

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "policy_plugin.h"

static bool kind_is(const policy_plugin_string_t *kind, const char *name) {
  size_t n = strlen(name);
  return kind->len == n && memcmp(kind->ptr, name, n) == 0;
}

void exports_fuelhost_host_policy_check(exports_fuelhost_host_policy_action_t *action,
                                        exports_fuelhost_host_policy_decision_t *ret) {
  uint64_t limit = 0;
  const char *kind = NULL;
  if (kind_is(&action->kind, "invoke")) {
    limit = 100, kind = "invoke";
  } else if (kind_is(&action->kind, "transfer")) {
    limit = 1000, kind = "transfer";
  }
  if (kind == NULL || action->price <= limit) {
    ret->tag = FUELHOST_HOST_TYPES_DECISION_ALLOW;
  } else {
    char reason[512];
    snprintf(reason, sizeof reason, "spend limit: %s of %.*s costs %" PRIu64 " scrip, over the limit of %" PRIu64 " per %s",
             kind, (int)action->target.len, (const char *)action->target.ptr, action->price, limit, kind);
    ret->tag = FUELHOST_HOST_TYPES_DECISION_DENY;
    policy_plugin_string_dup(&ret->val.deny, reason);
  }
  // The arguments are ours to free; the returned reason is freed by the
  // generated post-return function.
  exports_fuelhost_host_policy_action_free(action);
}
