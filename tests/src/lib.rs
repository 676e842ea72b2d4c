//! Cross-crate integration, lifecycle, crash and property tests for Stackwright. The library
//! itself is empty; the tests live in `tests/` and drive `fixture-program`, a small Stackwright
//! program whose shape is set through environment variables.
