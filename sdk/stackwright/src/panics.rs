//! Panics in code the engine calls — provider calls and the program's `Output::map` closures —
//! fail that one step instead of the process. While such code runs, the panic hook stays quiet
//! (its default text would print the panic message, which may carry a secret, on stderr); the
//! message is returned to the caller, which scrubs it and reports it against the resource.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

use futures::FutureExt;

thread_local! {
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

static HOOK: Once = Once::new();

/// Installs (once per process) a panic hook that is silent while a catching region runs on the
/// panicking thread and defers to the previous hook otherwise.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) == 0 {
                previous(info);
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

/// The text of a panic payload.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
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
        assert_eq!(catch(|| -> u32 { panic!("boom {}", 7) }), Err("boom 7".to_string()));
        assert_eq!(catch(|| 3), Ok(3));
    }

    #[tokio::test]
    async fn a_panic_in_a_future_becomes_its_message() {
        let r = catch_async(async {
            tokio::task::yield_now().await;
            panic!("late");
        })
        .await;
        assert_eq!(r, Err::<(), _>("late".to_string()));
    }
}
