//! Panics in the user's program. The SDK catches them and reports a clean error that names the
//! panic and where it happened; the default panic hook's message and backtrace note would
//! otherwise go to stderr first, so they are kept quiet for the panics caught here.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::{Arc, Once};

use crate::stack::{Program, Stack};

thread_local! {
    /// Whether this thread is inside the program; the hook stays quiet then.
    static IN_PROGRAM: Cell<bool> = const { Cell::new(false) };
    /// Where the last caught panic on this thread happened, from the hook.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records the location of panics inside the program instead
/// of printing them, and leaves every other panic to the previous hook.
pub(super) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if IN_PROGRAM.get() {
                let at = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                LOCATION.set(at);
            } else {
                previous(info);
            }
        }));
    });
}

/// Marks the current thread as running the program until dropped (also while unwinding).
struct InProgram(bool);

impl InProgram {
    fn enter() -> Self {
        InProgram(IN_PROGRAM.replace(true))
    }
}

impl Drop for InProgram {
    fn drop(&mut self) {
        IN_PROGRAM.set(self.0);
    }
}

/// The program, with a panic turned into an error naming it (`the program panicked at
/// src/main.rs:12:5: message`).
pub(super) fn catching(program: Program) -> Program {
    Arc::new(move |stack: &mut Stack| {
        let result = {
            let _inside = InProgram::enter();
            // The stack is thrown away on error, so a half-declared one is never seen.
            std::panic::catch_unwind(AssertUnwindSafe(|| program(stack)))
        };
        result.unwrap_or_else(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(a non-text panic payload)".to_owned());
            let at = LOCATION.take().map(|l| format!(" at {l}")).unwrap_or_default();
            Err(anyhow::anyhow!("the program panicked{at}: {message}"))
        })
    })
}
