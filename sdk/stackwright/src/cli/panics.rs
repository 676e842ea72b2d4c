//! Panics in the user's program: the SDK catches them (see `crate::panics`) and reports a clean
//! error that names the panic and where it happened.

use std::sync::Arc;

use crate::stack::{Program, Stack};

/// The program, with a panic turned into an error naming it (`the program panicked: message (at
/// src/main.rs:12:5)`).
pub(super) fn catching(program: Program) -> Program {
    Arc::new(move |stack: &mut Stack| {
        // The stack is thrown away on error, so a half-declared one is never seen.
        crate::panics::catch(|| program(stack))
            .unwrap_or_else(|panic| Err(anyhow::anyhow!("the program panicked: {panic}")))
    })
}
