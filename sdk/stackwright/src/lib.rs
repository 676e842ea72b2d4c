//! Infrastructure as code in Rust: declare resources, preview and apply changes with a typed engine.
