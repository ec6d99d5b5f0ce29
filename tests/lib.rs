//! Placeholder lib target.
