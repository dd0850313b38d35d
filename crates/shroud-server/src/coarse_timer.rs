//! A coarse timer for hyper's header-read timeout.
//!
//! hyper arms the header-read timeout for every request on a keep-alive connection (a reset
//! of the connection's sleep to now + 30 s) and polls it while the head is incomplete. With
//! `hyper_util::rt::TokioTimer` every reset moves an entry in tokio's timer wheel and every
//! poll registers it again: about 2.5% of the server's CPU on small requests, for a deadline
//! that needs no precision. Here a sleep only records its deadline and its waker, and one
//! ticker task per timer wakes, once a [`TICK`], the sleeps whose deadline has passed. A 30 s
//! timeout fires between 30 and 31 s.

use hyper::rt::{Sleep, Timer};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often due sleeps are woken.
pub const TICK: Duration = Duration::from_secs(1);

/// A [`hyper::rt::Timer`] whose sleeps fire up to one [`TICK`] late.
#[derive(Clone)]
pub struct CoarseTimer {
    registry: Arc<Registry>,
}

#[derive(Default)]
struct Registry {
    /// Every live sleep; dead ones are dropped at the next tick.
    sleeps: Mutex<Vec<Weak<State>>>,
}

struct State {
    inner: Mutex<Inner>,
}

struct Inner {
    deadline: Instant,
    waker: Option<Waker>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl CoarseTimer {
    /// A timer that wakes due sleeps every `tick` ([`TICK`] in the server), and its ticker
    /// task, which ends when the last clone of the timer is dropped. Call from within a tokio
    /// runtime.
    pub fn with_tick(tick: Duration) -> CoarseTimer {
        let registry = Arc::new(Registry::default());
        let weak = Arc::downgrade(&registry);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(tick);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(registry) = weak.upgrade() else {
                    return;
                };
                registry.wake_due(Instant::now());
            }
        });
        CoarseTimer { registry }
    }

    /// Sleeps currently registered (tests).
    #[cfg(test)]
    fn registered(&self) -> usize {
        lock(&self.registry.sleeps).len()
    }
}

impl Registry {
    fn wake_due(&self, now: Instant) {
        lock(&self.sleeps).retain(|w| {
            let Some(state) = w.upgrade() else {
                return false;
            };
            let mut inner = lock(&state.inner);
            if inner.deadline <= now {
                // Taken: a sleep nobody polls again (hyper keeps it between requests) is
                // woken once, not every tick.
                if let Some(waker) = inner.waker.take() {
                    waker.wake();
                }
            }
            true
        });
    }
}

/// One sleep of a [`CoarseTimer`].
pub struct CoarseSleep {
    state: Arc<State>,
}

impl CoarseSleep {
    fn reset(&self, deadline: Instant) {
        lock(&self.state.inner).deadline = deadline;
    }
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = lock(&self.state.inner);
        if Instant::now() >= inner.deadline {
            return Poll::Ready(());
        }
        match &inner.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Sleep for CoarseSleep {}

impl Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        let now = Instant::now();
        // A duration too large to add never fires; a year is as good as never here.
        let deadline = now
            .checked_add(duration)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        self.sleep_until(deadline)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let state = Arc::new(State {
            inner: Mutex::new(Inner {
                deadline,
                waker: None,
            }),
        });
        lock(&self.registry.sleeps).push(Arc::downgrade(&state));
        Box::pin(CoarseSleep { state })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<CoarseSleep>() {
            Some(s) => s.reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_TICK: Duration = Duration::from_millis(20);
    /// Liveness bound only: a sleep that should fire must do so well within this.
    const PATIENCE: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn fires_after_its_deadline_never_before() {
        let timer = CoarseTimer::with_tick(TEST_TICK);
        let deadline = Instant::now() + Duration::from_millis(150);
        tokio::time::timeout(PATIENCE, timer.sleep_until(deadline))
            .await
            .expect("the sleep never fired");
        assert!(Instant::now() >= deadline);
    }

    #[tokio::test]
    async fn reset_moves_the_deadline_without_a_new_registration() {
        let timer = CoarseTimer::with_tick(TEST_TICK);
        let mut sleep = timer.sleep(Duration::from_millis(50));
        let later = Instant::now() + Duration::from_millis(300);
        for _ in 0..100 {
            timer.reset(&mut sleep, later);
        }
        assert_eq!(timer.registered(), 1);
        tokio::time::timeout(PATIENCE, sleep.as_mut())
            .await
            .expect("the sleep never fired");
        assert!(Instant::now() >= later, "fired at the old deadline");
    }

    #[tokio::test]
    async fn a_far_deadline_does_not_fire_and_overflow_does_not_panic() {
        let timer = CoarseTimer::with_tick(TEST_TICK);
        let mut sleep = timer.sleep(Duration::MAX);
        assert!(tokio::time::timeout(TEST_TICK * 5, sleep.as_mut())
            .await
            .is_err());
    }

    #[tokio::test]
    async fn dropped_sleeps_leave_the_registry_and_the_ticker_stops_with_the_timer() {
        let timer = CoarseTimer::with_tick(TEST_TICK);
        let sleeps: Vec<_> = (0..10)
            .map(|_| timer.sleep(Duration::from_secs(60)))
            .collect();
        assert_eq!(timer.registered(), 10);
        drop(sleeps);
        let start = Instant::now();
        while timer.registered() > 0 && start.elapsed() < PATIENCE {
            tokio::time::sleep(TEST_TICK).await;
        }
        assert_eq!(timer.registered(), 0);
        let weak = Arc::downgrade(&timer.registry);
        drop(timer);
        // The ticker holds only a weak reference: nothing keeps the registry alive.
        assert!(weak.upgrade().is_none());
    }
}
