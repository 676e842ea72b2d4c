//! Panics in code the SDK calls — the user's program, its `Output::map` closures, provider calls —
//! fail that one thing (the program, or one step) instead of the process. While such code runs,
//! the panic hook stays quiet (its default text would print the panic message, which may carry a
//! secret, on stderr) and only notes where the panic happened; the message and place are returned
//! to the caller, which scrubs them and reports them against the program or the resource.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

use futures::FutureExt;

thread_local! {
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    /// Where the last panic caught on this thread happened, noted by the hook.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs (once per process) a panic hook that only notes the location while a catching region
/// runs on the panicking thread and defers to the previous hook otherwise.
pub(crate) fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) == 0 {
                previous(info);
            } else {
                let at = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                LOCATION.with(|l| *l.borrow_mut() = at);
            }
        }));
    });
}

struct Region;

impl Region {
    fn enter() -> Self {
        CATCHING.with(|c| c.set(c.get() + 1));
        Region
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        CATCHING.with(|c| c.set(c.get() - 1));
    }
}

/// The text of a caught panic: its message and, when the hook saw it, where it happened.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    };
    match LOCATION.with(|l| l.borrow_mut().take()) {
        Some(at) => format!("{text} (at {at})"),
        None => text,
    }
}

/// Runs `f`, turning a panic into `Err(message)`.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    install_hook();
    let _region = Region::enter();
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| message(p.as_ref()))
}

/// A future whose every poll runs inside a catching region (a task may move between threads,
/// so the region is entered per poll, on the polling thread).
struct Quiet<F>(Pin<Box<F>>);

impl<F: Future> Future for Quiet<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _region = Region::enter();
        self.0.as_mut().poll(cx)
    }
}

/// Awaits `fut`, turning a panic into `Err(message)`.
pub(crate) async fn catch_async<F: Future>(fut: F) -> Result<F::Output, String> {
    install_hook();
    AssertUnwindSafe(Quiet(Box::pin(fut))).catch_unwind().await.map_err(|p| message(p.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        let err = catch(|| -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert!(err.starts_with("boom 7 (at ") && err.contains("panics.rs"), "{err}");
        assert_eq!(catch(|| 3), Ok(3));
    }

    #[tokio::test]
    async fn a_panic_in_a_future_becomes_its_message() {
        let r = catch_async(async {
            tokio::task::yield_now().await;
            panic!("late");
        })
        .await;
        assert!(r.unwrap_err().starts_with("late"));
    }
}
