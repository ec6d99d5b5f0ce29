;; wat-spend-limit: the spend-limit policy written directly against the
;; canonical ABI, to show the bare contract of the `policy-plugin` world.
;; Invocations priced above 100 scrip and transfers above 1,000 scrip are
;; denied; everything else is allowed.
;;
;; `check(action) -> decision` flattens to more than 16 values, so the host
;; passes one pointer to the `action` record, laid out in this memory by the
;; canonical ABI (32-bit): kind: string at 0, subject at 8, tenant:
;; option<string> at 16, target at 28, attributes: list at 36, price: u64
;; at 48, estimated: usage at 56; 96 bytes in all. The `decision` variant
;; comes back through a return area: the case (u8) at 0 (0 allow, 1 deny,
;; 2 require-approval), then for `deny` the reason string's pointer at 4
;; and length at 8.
;;
;; Build: wasm-tools component embed wit --world policy-plugin plugin.wat -o core.wasm
;;        wasm-tools component new core.wasm -o wat-spend-limit.wasm
(module
  (memory (export "memory") 1)

  ;; Constants: the two action kinds this policy limits, and its reasons.
  (data (i32.const 16) "invoke")
  (data (i32.const 32) "transfer")
  (data (i32.const 64) "spend limit: invoke over the limit of 100 per invoke")
  (data (i32.const 160) "spend limit: transfer over the limit of 1000 per transfer")

  ;; The return area for `check` (12 bytes, aligned to 4).
  (global $ret i32 (i32.const 512))

  ;; Where the host's allocations start: a bump allocator that never frees,
  ;; which is enough because every check runs in a fresh instance.
  (global $heap (mut i32) (i32.const 1024))

  (func (export "cabi_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $p) (local.get $new_size)))
    (block $fits
      (br_if $fits (i32.le_u (local.get $end) (i32.mul (memory.size) (i32.const 65536))))
      (br_if $fits
        (i32.ne
          (memory.grow
            (i32.add
              (i32.div_u
                (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
                (i32.const 65536))
              (i32.const 1)))
          (i32.const -1)))
      unreachable)
    (if (local.get $old_size)
      (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
    (global.set $heap (local.get $end))
    (local.get $p))

  ;; Byte-wise equality of two strings.
  (func $eq (param $p i32) (param $len i32) (param $q i32) (param $qlen i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $len) (local.get $qlen)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.ne
              (i32.load8_u (i32.add (local.get $p) (local.get $i)))
              (i32.load8_u (i32.add (local.get $q) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; Deny with the reason at `reason`/`len` if `price` is over `limit`.
  (func $limit (param $price i64) (param $limit i64) (param $reason i32) (param $len i32)
    (if (i64.gt_u (local.get $price) (local.get $limit))
      (then
        (i32.store8 (global.get $ret) (i32.const 1))
        (i32.store offset=4 (global.get $ret) (local.get $reason))
        (i32.store offset=8 (global.get $ret) (local.get $len)))))

  (func (export "fuelhost:host/policy@0.1.0#check") (param $action i32) (result i32)
    (local $kind i32) (local $kind_len i32) (local $price i64)
    (local.set $kind (i32.load (local.get $action)))
    (local.set $kind_len (i32.load offset=4 (local.get $action)))
    (local.set $price (i64.load offset=48 (local.get $action)))
    (i32.store8 (global.get $ret) (i32.const 0))
    (if (call $eq (local.get $kind) (local.get $kind_len) (i32.const 16) (i32.const 6))
      (then (call $limit (local.get $price) (i64.const 100) (i32.const 64) (i32.const 52))))
    (if (call $eq (local.get $kind) (local.get $kind_len) (i32.const 32) (i32.const 8))
      (then (call $limit (local.get $price) (i64.const 1000) (i32.const 160) (i32.const 57))))
    (global.get $ret))
)
