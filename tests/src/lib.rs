//! Cross-crate integration, lifecycle, crash and property tests for Stackwright.
