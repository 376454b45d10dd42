//! A timer for `zbus::block_on` futures without an async runtime of our own: one short-lived
//! thread per timer sleeps and then wakes the waiting future.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

#[derive(Default)]
struct State {
    fired: bool,
    waker: Option<Waker>,
}

/// A future that completes `after` from now.
pub struct Timer(Arc<Mutex<State>>);

impl Timer {
    pub fn new(after: Duration) -> Timer {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            std::thread::sleep(after);
            let waker = {
                let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                s.fired = true;
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        });
        Timer(state)
    }

    fn poll_fired(&self, waker: &Waker) -> bool {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if s.fired {
            return true;
        }
        s.waker = Some(waker.clone());
        false
    }
}

/// Sleep inside a `zbus::block_on` future.
pub async fn sleep(d: Duration) {
    let t = Timer::new(d);
    poll_fn(|cx| {
        if t.poll_fired(cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// `Some(output)` if `fut` completes within `after`, else `None`. `fut` is polled first, so an
/// output that is ready when the timer fires still wins.
pub async fn deadline<F: Future>(after: Duration, fut: F) -> Option<F::Output> {
    let t = Timer::new(after);
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if t.poll_fired(cx.waker()) {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
