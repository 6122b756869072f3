//! The login form: `POST /api/login`, which answers a signed token.

use leptos::prelude::*;

use crate::api;

#[component]
pub fn Login() -> impl IntoView {
    let user = RwSignal::new(String::new());
    let pass = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if user.get_untracked().trim().is_empty() {
            error.set(Some("Enter a username.".into()));
            return;
        }
        busy.set(true);
        error.set(None);
        let (u, p) = (user.get_untracked(), pass.get_untracked());
        leptos::task::spawn_local(async move {
            let r = api::login(u, p).await;
            busy.try_set(false);
            if let Err(e) = r {
                error.try_set(Some(e));
                pass.try_set(String::new());
            }
        });
    };
    view! {
        <main class="login">
            <h1>"Warren management"</h1>
            <form id="login-form" on:submit=submit>
                <label for="login-username">"Username"</label>
                <input id="login-username" name="username" autocomplete="username" bind:value=user/>
                <label for="login-password">"Password"</label>
                <input id="login-password" name="password" type="password" autocomplete="current-password" bind:value=pass/>
                <button type="submit" id="login-submit" disabled=move || busy.get()>"Log in"</button>
                {move || error.get().map(|e| view! { <p class="err" role="alert" id="login-error">{e}</p> })}
            </form>
        </main>
    }
}
