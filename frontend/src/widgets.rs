//! Small pieces the pages share.

use std::future::Future;

use leptos::prelude::*;
use warren_api_types::stats::{RateDetails, Sample};

/// The outcome of the last action of a form: success text, or the API's
/// `reason` verbatim.
pub type Outcome = RwSignal<Option<Result<String, String>>>;

pub fn outcome() -> Outcome {
    RwSignal::new(None)
}

/// Runs an action; its result goes to `out`, then every page refreshes.
pub fn run(out: Outcome, ok: impl Into<String>, fut: impl Future<Output = Result<String, String>> + 'static) {
    let ok = ok.into();
    out.set(None);
    leptos::task::spawn_local(async move {
        let r = fut.await.map(|_| ok);
        out.try_set(Some(r));
        crate::refresh::bump();
    });
}

#[component]
pub fn Status(out: Outcome) -> impl IntoView {
    move || match out.get() {
        None => ().into_any(),
        Some(Ok(m)) => view! { <p class="ok" role="status">{m}</p> }.into_any(),
        Some(Err(e)) => view! { <p class="err" role="alert">{e}</p> }.into_any(),
    }
}

/// A loaded value, or its error, or "loading".
pub fn loaded<T: Clone + Send + Sync + 'static, V: IntoView + 'static>(
    data: crate::refresh::Loaded<T>,
    f: impl Fn(T) -> V + Send + Sync + 'static,
) -> impl IntoView {
    move || match data.get() {
        None => view! { <p class="muted">"Loading…"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="err" role="alert">{e}</p> }.into_any(),
        Some(Ok(v)) => f(v).into_any(),
    }
}

/// A button that asks again before doing something destructive.
///
/// Which prompt is open lives outside the button, keyed by its label and
/// question, so the live refresh that re-renders a table does not close a
/// prompt the user is about to answer. One prompt is open at a time.
#[component]
pub fn ConfirmButton(
    #[prop(into)] label: String,
    #[prop(into)] question: String,
    on_confirm: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let open = open_prompt();
    let key = format!("{label}\u{0}{question}");
    let asking = {
        let key = key.clone();
        move || open.with(|o| o.as_deref() == Some(key.as_str()))
    };
    let label2 = label.clone();
    let f = std::sync::Arc::new(on_confirm);
    view! {
        <Show
            when=asking
            fallback=move || {
                let l = label.clone();
                let key = key.clone();
                view! { <button type="button" class="danger" on:click=move |_| open.set(Some(key.clone()))>{l}</button> }
            }
        >
            <span class="confirm" role="group">
                {question.clone()}
                " "
                <button type="button" class="danger" on:click={
                    let f = f.clone();
                    move |_| {
                        open.set(None);
                        f();
                    }
                }>{format!("Yes, {}", label2.to_lowercase())}</button>
                " "
                <button type="button" on:click=move |_| open.set(None)>"Cancel"</button>
            </span>
        </Show>
    }
}

/// The open confirmation prompt's key, shared by every [`ConfirmButton`];
/// the app closes it when the page changes.
pub fn open_prompt() -> RwSignal<Option<String>> {
    OPEN_PROMPT.with(|cell| match cell.get() {
        Some(s) => s,
        None => {
            let s = RwSignal::new(None);
            cell.set(Some(s));
            s
        }
    })
}

thread_local! {
    static OPEN_PROMPT: std::cell::Cell<Option<RwSignal<Option<String>>>> = const { std::cell::Cell::new(None) };
}

pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn rate(d: &Option<RateDetails>) -> String {
    match d {
        Some(d) => format!("{:.1}/s", d.rate),
        None => "".into(),
    }
}

pub fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", units[u]) }
}

pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m) = (s / 86400, s / 3600 % 24, s / 60 % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {}s", s % 60)
    }
}

/// A series of a chart: its name, CSS class and points (ms, value).
#[derive(Clone)]
pub struct Series {
    pub name: &'static str,
    pub class: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// Points of a gauge (queue lengths) from samples, oldest first.
pub fn gauge(d: &RateDetails) -> Vec<(f64, f64)> {
    let mut s: Vec<Sample> = d.samples.clone().unwrap_or_default();
    s.sort_by_key(|x| x.timestamp);
    s.iter().map(|x| (x.timestamp as f64, x.sample as f64)).collect()
}

/// Rates per second between consecutive samples of a counter.
pub fn rates(d: &Option<RateDetails>) -> Vec<(f64, f64)> {
    let Some(d) = d else { return vec![] };
    let mut s: Vec<Sample> = d.samples.clone().unwrap_or_default();
    s.sort_by_key(|x| x.timestamp);
    s.windows(2)
        .filter(|w| w[1].timestamp > w[0].timestamp)
        .map(|w| {
            let dt = (w[1].timestamp - w[0].timestamp) as f64 / 1000.0;
            (w[1].timestamp as f64, w[1].sample.saturating_sub(w[0].sample) as f64 / dt)
        })
        .collect()
}

/// A line chart in SVG. `id` names it for tests and for its heading.
#[component]
pub fn Chart(#[prop(into)] id: String, #[prop(into)] title: String, series: Vec<Series>) -> impl IntoView {
    const W: f64 = 560.0;
    const H: f64 = 160.0;
    const L: f64 = 50.0;
    let (mut x0, mut x1, mut ymax) = (f64::MAX, f64::MIN, 0.0f64);
    for s in &series {
        for &(x, y) in &s.points {
            x0 = x0.min(x);
            x1 = x1.max(x);
            ymax = ymax.max(y);
        }
    }
    let ymax = if ymax <= 0.0 { 1.0 } else { ymax * 1.1 };
    let span = if x1 > x0 { x1 - x0 } else { 1.0 };
    let px = move |x: f64| L + (x - x0) / span * (W - L - 10.0);
    let py = move |y: f64| 10.0 + (H - 30.0) * (1.0 - y / ymax);
    let has_data = series.iter().any(|s| s.points.len() >= 2);
    let label_id = format!("{id}-title");
    let lines = series
        .iter()
        .map(|s| {
            let pts = s
                .points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect::<Vec<_>>()
                .join(" ");
            view! { <polyline class=format!("line {}", s.class) data-series=s.name points=pts></polyline> }
        })
        .collect_view();
    let legend = series
        .iter()
        .map(|s| {
            let last = s.points.last().map(|p| p.1).unwrap_or(0.0);
            let shown = if last.fract() == 0.0 { format!("{last:.0}") } else { format!("{last:.1}") };
            view! { <li><span class=format!("swatch {}", s.class)></span>{s.name}": "{shown}</li> }
        })
        .collect_view();
    let top = if ymax >= 10.0 { format!("{:.0}", ymax) } else { format!("{:.1}", ymax) };
    view! {
        <figure class="chart" id=id.clone() data-has-data=has_data.to_string()>
            <figcaption id=label_id.clone()>{title}</figcaption>
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-labelledby=label_id>
                <line class="axis" x1=L y1=H - 20.0 x2=W - 10.0 y2=H - 20.0></line>
                <line class="axis" x1=L y1=10.0 x2=L y2=H - 20.0></line>
                <text x=L - 5.0 y=16.0 text-anchor="end" class="tick">{top}</text>
                <text x=L - 5.0 y=H - 20.0 text-anchor="end" class="tick">"0"</text>
                {lines}
                {(!has_data).then(|| view! { <text x=W / 2.0 y=H / 2.0 text-anchor="middle" class="tick">"waiting for samples…"</text> })}
            </svg>
            <ul class="legend">{legend}</ul>
        </figure>
    }
}

/// Previous and Next for a list whose page lives in the URL; with `id`,
/// the buttons are `{id}-prev` and `{id}-next`.
#[component]
pub fn Pager(
    url: crate::url_state::UrlState,
    page: usize,
    pages: usize,
    #[prop(optional)] id: &'static str,
) -> impl IntoView {
    let (back, next) = (url.clone(), url);
    let ids = (!id.is_empty()).then(|| (format!("{id}-prev"), format!("{id}-next")));
    let (prev_id, next_id) = ids.unzip();
    view! {
        <div class="row">
            <button type="button" class="prev" id=prev_id disabled={page <= 1} on:click=move |_| back.go_to_page(page.saturating_sub(1))>"Previous"</button>
            <button type="button" class="next" id=next_id disabled={page >= pages} on:click=move |_| next.go_to_page(page + 1)>"Next"</button>
        </div>
    }
}
