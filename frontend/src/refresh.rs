//! Live refresh: a tick that pages' data follow, advanced every few seconds
//! unless paused, and by hand after every action.

use std::time::Duration;

use leptos::prelude::*;
use serde::de::DeserializeOwned;

#[derive(Clone, Copy)]
pub struct Refresh {
    pub tick: RwSignal<u64>,
    pub paused: RwSignal<bool>,
    pub secs: RwSignal<u64>,
}

impl Refresh {
    pub fn provide() -> Refresh {
        let r = Refresh { tick: RwSignal::new(0), paused: RwSignal::new(false), secs: RwSignal::new(5) };
        Effect::new(move |prev: Option<Option<IntervalHandle>>| {
            if let Some(Some(h)) = prev {
                h.clear();
            }
            let secs = r.secs.get().max(1);
            if r.paused.get() {
                return None;
            }
            set_interval_with_handle(move || r.tick.update(|t| *t += 1), Duration::from_secs(secs)).ok()
        });
        provide_context(r);
        TICK.with(|t| t.set(Some(r.tick)));
        r
    }
}

pub fn get() -> Refresh {
    expect_context::<Refresh>()
}

/// Refresh now (after an action changed something).
pub fn bump() {
    if let Some(t) = TICK.with(|t| t.get()) {
        t.try_update(|t| *t += 1);
    }
}

thread_local! {
    static TICK: std::cell::Cell<Option<RwSignal<u64>>> = const { std::cell::Cell::new(None) };
}

pub type Loaded<T> = RwSignal<Option<Result<T, String>>>;

/// Data from `GET path()`, fetched again on every tick and whenever the
/// signals `path` reads change.
pub fn poll<T>(path: impl Fn() -> String + 'static) -> Loaded<T>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    let out: Loaded<T> = RwSignal::new(None);
    let tick = get().tick;
    Effect::new(move |_| {
        tick.track();
        let p = path();
        leptos::task::spawn_local(async move {
            let r = crate::api::get::<T>(&p).await;
            out.try_set(Some(r));
        });
    });
    out
}
