//! fuelhost's integration tests: one binary, one module per feature, every
//! guest a real component built from source by `scripts/build-guests.sh`.

mod adversarial;
mod allocations;
mod analytics;
mod api;
mod approvals;
mod async_components;
mod charging;
mod commands;
mod demo;
mod durability;
mod economy;
mod egress;
mod filesystem;
mod golden_fuel;
mod guest_ledger;
mod hosts;
mod ledger;
mod lifecycle;
mod loadgen;
mod metering;
mod nesting;
mod policy;
mod policy_languages;
mod properties;
mod python;
mod readme_examples;
mod registry;
mod retention;
mod rules;
mod sandbox;
mod scheduler;
mod sponsorship;
mod telemetry;
mod typed_exports;
mod worlds;
