//! A list page's state (page, filter, sort) in the URL's query string,
//! e.g. `/queues?page=2&sort=messages`, so that a view can be linked and
//! reloaded, and back/forward walk through it.

use std::collections::BTreeMap;
use std::sync::Arc;

use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::params::ParamsMap;

use crate::api::enc;

#[derive(Clone)]
pub struct UrlState {
    path: &'static str,
    query: Memo<ParamsMap>,
    navigate: Arc<dyn Fn(&str, NavigateOptions) + Send + Sync>,
}

impl UrlState {
    /// The state of the page at `path` (its URL without the query).
    pub fn new(path: &'static str) -> UrlState {
        let navigate = use_navigate();
        UrlState { path, query: use_query_map(), navigate: Arc::new(move |url, opts| navigate(url, opts)) }
    }

    pub fn param(&self, k: &'static str) -> Signal<String> {
        let q = self.query;
        Signal::derive(move || q.with(|m| m.get(k).unwrap_or_default()))
    }

    pub fn flag(&self, k: &'static str) -> Signal<bool> {
        let q = self.query;
        Signal::derive(move || q.with(|m| m.get_str(k) == Some("true")))
    }

    /// A positive number, `default` when absent or invalid.
    pub fn number(&self, k: &'static str, default: usize) -> Signal<usize> {
        let q = self.query;
        Signal::derive(move || {
            q.with(|m| m.get_str(k).and_then(|v| v.parse().ok())).filter(|n| *n > 0).unwrap_or(default)
        })
    }

    /// Changes some parameters (an empty value removes one). `replace`
    /// rewrites the current history entry instead of adding one (typing in
    /// a filter).
    pub fn set(&self, changes: &[(&str, String)], replace: bool) {
        let mut m: BTreeMap<String, String> =
            self.query.with_untracked(|q| q.clone().into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        for (k, v) in changes {
            if v.is_empty() {
                m.remove(*k);
            } else {
                m.insert(k.to_string(), v.clone());
            }
        }
        let qs: Vec<String> = m.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
        let url =
            if qs.is_empty() { self.path.to_string() } else { format!("{}?{}", self.path, qs.join("&")) };
        (self.navigate)(&url, NavigateOptions { replace, scroll: false, ..Default::default() });
    }

    /// Goes to page `n` of the list.
    pub fn go_to_page(&self, n: usize) {
        self.set(&[("page", if n <= 1 { String::new() } else { n.to_string() })], false);
    }
}
