//! The dashboard in a real headless Chromium against a real warren-server:
//! login, publishing and getting messages from the queue and exchange
//! pages, queue depths per node, admin changes, charts, deep links, and bad
//! input (markup in names and payloads, a tampered token).

mod dashboard_support;

use dashboard_support::{Browser, declare_queue, depth, publish, server};
use warren_tests::http::{Api, enc, json};

#[tokio::test]
async fn login_as_guest_and_refused_with_a_wrong_password() {
    let s = server();
    let b = Browser::start(&s, "login").await;
    b.goto("/").await;
    b.find("#login-form").await;
    b.shot("login").await;
    b.login("guest", "wrong").await;
    let msg = b.wait_text("#login-error", "wrong username or password").await;
    assert!(msg.contains("Login failed"), "{msg}");
    // Still not logged in, and no password kept anywhere.
    b.find("#login-form").await;
    let stored = b.js("return JSON.stringify(sessionStorage) + JSON.stringify(localStorage);").await;
    assert!(!stored.as_str().unwrap().contains("wrong"), "{stored}");
    b.login("guest", "guest").await;
    b.wait_text("#whoami", "guest").await;
    b.find("#total-queues").await;
    let stored = b.js("return JSON.stringify(sessionStorage) + JSON.stringify(localStorage);").await;
    let stored = stored.as_str().unwrap();
    assert!(stored.contains("warren.token") && !stored.contains("\"guest\\nguest\""), "{stored}");
    // Log out: back to the form.
    b.click("#logout").await;
    b.find("#login-form").await;
    b.close().await;
}

#[tokio::test]
async fn publish_from_queue_and_exchange_pages_then_get_the_messages_back() {
    let s = server();
    let api = Api::new(&s);
    declare_queue(&api, "dash-q").await;
    let r = api.post("/api/bindings/%2F/e/amq.direct/q/dash-q", json!({"routing_key": "to-dash"})).await;
    assert_eq!(r.code(), 201, "{}", r.body);
    let b = Browser::start(&s, "publish").await;
    b.open_as_guest("/queues/%2F/dash-q").await;
    b.wait_text("#queue-name", "dash-q").await;
    b.wait_text("#q-messages", "0").await;

    b.fill("#pub-payload", "hello from the queue page").await;
    b.click("#pub-submit").await;
    b.wait_text("#publish-status", "Message published (routed).").await;
    b.wait_text("#q-messages", "1").await;
    assert_eq!(depth(&api, "dash-q").await, 1);
    b.shot("queue").await;

    b.goto("/exchanges/%2F/amq.direct").await;
    b.wait_text("#exchange-name", "amq.direct").await;
    b.wait_text("#exchange-bindings", "dash-q").await;
    b.fill("#pub-key", "nowhere").await;
    b.fill("#pub-payload", "lost").await;
    b.click("#pub-submit").await;
    b.wait_text("#publish-status", "not routed").await;
    b.fill("#pub-key", "to-dash").await;
    b.fill("#pub-payload", "hello from the exchange page").await;
    b.click("#pub-submit").await;
    b.wait_text("#publish-status", "Message published (routed).").await;
    b.shot("exchange").await;
    assert_eq!(depth(&api, "dash-q").await, 2);

    // Back to the queue with the browser's back button: depth 2, and both
    // messages come back.
    b.c.back().await.unwrap();
    b.wait_text("#queue-name", "dash-q").await;
    b.wait_text("#q-messages", "2").await;
    b.fill("#get-count", "2").await;
    b.click("#get-submit").await;
    b.wait_text("#got-messages", "hello from the queue page").await;
    b.wait_text("#got-messages", "hello from the exchange page").await;
    b.shot("queue-get").await;
    // Requeued (the default ack mode), so still there.
    assert_eq!(depth(&api, "dash-q").await, 2);
    b.close().await;
}

#[tokio::test]
async fn queues_page_depths_and_the_per_node_view_agree() {
    let s = server();
    let api = Api::new(&s);
    for (q, n) in [("depth-a", 1), ("depth-b", 2), ("depth-c", 3)] {
        declare_queue(&api, q).await;
        for i in 0..n {
            publish(&api, "amq.default", q, &format!("m{i}")).await;
        }
    }
    let b = Browser::start(&s, "queues").await;
    b.open_as_guest("/queues").await;
    b.wait_text("#queues", "depth-c").await;
    b.wait_js(
        "the table shows 6 messages",
        "[...document.querySelectorAll('#queues td.messages')].map(e => +e.textContent.replace(/,/g, '')).reduce((a, b) => a + b, 0) === 6",
    )
    .await;
    let per_node = b
        .js("return [...document.querySelectorAll('#per-node .node-depths')].map(e => +e.dataset.total).reduce((a, b) => a + b, 0);")
        .await;
    assert_eq!(per_node.as_u64(), Some(6));
    // Each node's line counts all its queues, not just the listed page: it
    // agrees with the overview's totals.
    let all = b
        .js("return [...document.querySelectorAll('#per-node .node-all')].map(e => +e.dataset.messages).reduce((a, b) => a + b, 0);")
        .await;
    assert_eq!(all.as_u64(), api.ok("/api/overview").await["queue_totals"]["messages"].as_u64());
    assert_eq!(all.as_u64(), Some(6));
    // One node: no Node column, as RabbitMQ's list has none unclustered.
    let node_column = b
        .js("return document.querySelectorAll('#queues td.node').length + \
             [...document.querySelectorAll('#queues th')].filter(e => e.textContent.trim() === 'Node').length;")
        .await;
    assert_eq!(node_column.as_u64(), Some(0));
    let bars = b
        .js("return [...document.querySelectorAll('#per-node g.bar')].map(e => e.dataset.queue + '=' + e.dataset.messages).sort().join(',');")
        .await;
    assert_eq!(bars.as_str(), Some("depth-a=1,depth-b=2,depth-c=3"));
    b.shot("queues").await;
    assert_eq!(b.find("#queue-next").await.text().await.unwrap(), "Next");

    // The node filter hides other nodes; the one node stays.
    let node = api.ok("/api/nodes").await[0]["name"].as_str().unwrap().to_owned();
    b.find("#node-filter").await.select_by_value(&node).await.unwrap();
    b.wait_js("the node's bars shown", &format!("!document.querySelector('[data-node=\"{node}\"]').hidden"))
        .await;

    // Server-side filter and sort.
    b.fill("#queue-filter", "depth-b").await;
    b.wait_js("only depth-b", "document.querySelectorAll('#queues tbody tr').length === 1").await;
    b.wait_text("#queues", "depth-b").await;
    b.fill("#queue-filter", "depth-").await;
    b.wait_js("three queues", "document.querySelectorAll('#queues tbody tr').length === 3").await;
    b.click("button[data-sort=messages]").await;
    b.wait_js(
        "sorted by messages, most first",
        "document.querySelector('#queues tbody tr').dataset.queue === 'depth-c'",
    )
    .await;

    // The list's state is in the URL: a reload keeps it, back undoes the sort.
    let url = b.c.current_url().await.unwrap();
    let query = url.query().unwrap_or("").to_owned();
    assert!(query.contains("sort=messages") && query.contains("name=depth-"), "{url}");
    b.c.refresh().await.unwrap();
    b.wait_js(
        "still filtered and sorted after a reload",
        "document.querySelectorAll('#queues tbody tr').length === 3 \
         && document.querySelector('#queues tbody tr').dataset.queue === 'depth-c'",
    )
    .await;
    assert_eq!(b.find("#queue-filter").await.prop("value").await.unwrap().as_deref(), Some("depth-"));
    b.c.back().await.unwrap();
    b.wait_js(
        "back: no sort, still filtered",
        "!location.search.includes('sort=') && location.search.includes('name=depth-')",
    )
    .await;

    // Add a queue from the form.
    b.fill("#aq-name", "added-from-ui").await;
    b.click("#aq-submit").await;
    b.wait_text("#add-queue + p", "Queue 'added-from-ui' declared.").await;
    assert_eq!(api.get("/api/queues/%2F/added-from-ui").await.code(), 200);
    b.close().await;
}

#[tokio::test]
async fn create_and_delete_a_user_a_vhost_and_a_policy() {
    let s = server();
    let api = Api::new(&s);
    let b = Browser::start(&s, "admin").await;
    b.open_as_guest("/admin").await;

    b.fill("#user-name", "dash-user").await;
    b.fill("#user-password", "s3cret").await;
    b.fill("#user-tags", "monitoring").await;
    b.click("#user-submit").await;
    b.find("tr[data-user=dash-user]").await;
    assert_eq!(api.ok("/api/users/dash-user").await["tags"], json!(["monitoring"]));

    b.fill("#vhost-name", "dash-vhost").await;
    b.click("#vhost-submit").await;
    b.find("tr[data-vhost=dash-vhost]").await;
    assert_eq!(api.get("/api/vhosts/dash-vhost").await.code(), 200);

    b.fill("#policy-name", "dash-policy").await;
    b.fill("#policy-pattern", "^dash\\.").await;
    b.fill("#policy-definition", "max-length=10").await;
    b.fill("#policy-priority", "x").await;
    b.click("#policy-submit").await;
    b.wait_text("#policies", "Priority: enter a number.").await;
    b.fill("#policy-priority", "3").await;
    b.click("#policy-submit").await;
    b.find("tr[data-policy=dash-policy]").await;
    let p = api.ok("/api/policies/%2F/dash-policy").await;
    assert_eq!((p["pattern"].as_str(), p["priority"].as_i64()), (Some("^dash\\."), Some(3)));
    assert_eq!(p["definition"], json!({"max-length": 10}));
    // A refused policy shows the API's reason verbatim.
    b.fill("#policy-name", "bad-policy").await;
    b.fill("#policy-pattern", "(").await;
    b.click("#policy-submit").await;
    let r = api
        .put("/api/policies/%2F/bad-policy2", json!({"pattern": "(", "definition": {"max-length": 10}}))
        .await;
    assert!(r.code() >= 400, "{}", r.body);
    // (The browser's text collapses white space.)
    let reason = r.reason().split_whitespace().collect::<Vec<_>>().join(" ");
    b.wait_text("#policies p[role=alert]", &reason).await;
    b.shot("admin").await;

    // An open confirmation prompt survives the refresh that redraws its
    // table: the user created behind the page's back shows up (a redraw),
    // and the prompt is still there.
    b.find("#refresh-interval").await.select_by_value("2").await.unwrap();
    b.click("tr[data-user=dash-user] button.danger").await;
    b.wait_text("tr[data-user=dash-user] .confirm", "Delete user").await;
    assert_eq!(api.put("/api/users/dash-later", json!({"password": "x", "tags": ""})).await.code(), 201);
    b.find("tr[data-user=dash-later]").await;
    b.wait_text("tr[data-user=dash-user] .confirm", "Delete user").await;
    b.click("tr[data-user=dash-user] .confirm button:not(.danger)").await;
    b.absent("tr[data-user=dash-user] .confirm").await;

    for (row, question) in [
        ("tr[data-user=dash-user]", "Delete user"),
        ("tr[data-vhost=dash-vhost]", "Delete virtual host"),
        ("tr[data-policy=dash-policy]", "Delete policy"),
    ] {
        b.click(&format!("{row} button.danger")).await;
        b.wait_text(&format!("{row} .confirm"), question).await;
        b.click(&format!("{row} .confirm button.danger")).await;
        b.absent(row).await;
    }
    assert_eq!(api.get("/api/users/dash-user").await.code(), 404);
    assert_eq!(api.get("/api/vhosts/dash-vhost").await.code(), 404);
    assert_eq!(api.get("/api/policies/%2F/dash-policy").await.code(), 404);
    b.close().await;
}

#[tokio::test]
async fn topic_permissions_operator_policies_and_user_limits() {
    let s = server();
    let api = Api::new(&s);
    assert_eq!(api.put("/api/users/tp-user", json!({"password": "x", "tags": ""})).await.code(), 201);
    let b = Browser::start(&s, "admin-more").await;
    b.open_as_guest("/admin").await;

    b.fill("#tperm-user", "tp-user").await;
    b.fill("#tperm-write", "^logs\\.").await;
    b.click("#tperm-submit").await;
    b.wait_text("#topic-permissions-table", "tp-user").await;
    let tp = api.ok("/api/topic-permissions/%2F/tp-user").await;
    assert_eq!((tp[0]["exchange"].as_str(), tp[0]["write"].as_str()), (Some("amq.topic"), Some("^logs\\.")));

    b.fill("#opolicy-name", "cap").await;
    b.fill("#opolicy-pattern", ".*").await;
    b.find("#opolicy-apply").await.select_by_value("queues").await.unwrap();
    b.fill("#opolicy-definition", "max-length=100").await;
    b.click("#opolicy-submit").await;
    b.find("#operator-policies-table tr[data-policy=cap]").await;
    let p = api.ok("/api/operator-policies/%2F/cap").await;
    assert_eq!((p["apply-to"].as_str(), &p["definition"]), (Some("queues"), &json!({"max-length": 100})));
    assert_eq!(api.get("/api/policies/%2F/cap").await.code(), 404, "an operator policy is not a policy");

    b.fill("#ulimit-value", "7").await;
    b.click("#ulimit-submit").await;
    b.wait_text("#user-limits p[role=alert]", "Enter a user.").await;
    b.fill("#ulimit-owner", "tp-user").await;
    b.find("#ulimit-kind").await.select_by_value("max-channels").await.unwrap();
    b.click("#ulimit-submit").await;
    b.wait_text("#ulimit-table", "max-channels").await;
    assert_eq!(api.ok("/api/user-limits/tp-user").await[0]["value"]["max-channels"], 7);
    b.shot("admin-limits").await;

    b.click("#topic-permissions-table button.danger").await;
    b.click("#topic-permissions-table .confirm button.danger").await;
    b.absent("#topic-permissions-table tbody tr").await;
    assert_eq!(api.get("/api/topic-permissions/%2F/tp-user").await.code(), 404);
    b.click("#operator-policies-table tr[data-policy=cap] button.danger").await;
    b.click("#operator-policies-table tr[data-policy=cap] .confirm button.danger").await;
    b.absent("#operator-policies-table tr[data-policy=cap]").await;
    assert_eq!(api.get("/api/operator-policies/%2F/cap").await.code(), 404);
    b.click("#ulimit-table button.danger").await;
    b.absent("#ulimit-table tbody tr").await;
    assert_eq!(api.ok("/api/user-limits/tp-user").await, json!([]));
    b.close().await;
}

#[tokio::test]
async fn definitions_export_and_import_from_the_overview() {
    let s = server();
    let api = Api::new(&s);
    declare_queue(&api, "exported-q").await;
    let b = Browser::start(&s, "definitions").await;
    b.open_as_guest("/").await;
    b.find("#definitions").await;

    // The download is a Blob; keep a reference to read what the user gets.
    b.js("window.__blobs = []; const orig = URL.createObjectURL; \
          URL.createObjectURL = blob => { window.__blobs.push(blob); return orig(blob); };")
        .await;
    b.click("#export-definitions").await;
    b.wait_text("#definitions p[role=status]", "Definitions exported.").await;
    let text =
        b.c.execute_async(
            "const done = arguments[arguments.length - 1]; window.__blobs[0].text().then(done);",
            vec![],
        )
        .await
        .expect("read the exported blob");
    let exported: serde_json::Value =
        serde_json::from_str(text.as_str().expect("blob text")).expect("exported JSON");
    assert!(exported["queues"].as_array().unwrap().iter().any(|q| q["name"] == "exported-q"), "{exported}");

    b.click("#import-definitions").await;
    b.wait_text("#definitions p[role=alert]", "Choose a definitions file first.").await;
    let dir = std::env::temp_dir().join(format!("warren-defs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    let defs = json!({"queues": [{"name": "imported-q", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {}}]});
    std::fs::write(&good, defs.to_string()).unwrap();
    b.find("#import-file").await.send_keys(&good.to_string_lossy()).await.unwrap();
    b.click("#import-definitions").await;
    b.wait_text("#definitions p[role=status]", "Definitions imported.").await;
    assert_eq!(api.get("/api/queues/%2F/imported-q").await.code(), 200);

    // A file the API refuses: its reason is shown.
    let bad = dir.join("bad.json");
    let refused = json!({"queues": [{"name": "q", "vhost": "no-such-vhost", "durable": true}]});
    std::fs::write(&bad, refused.to_string()).unwrap();
    let r = api.post("/api/definitions", refused).await;
    assert!(r.code() >= 400, "{}", r.body);
    b.find("#import-file").await.send_keys(&bad.to_string_lossy()).await.unwrap();
    b.click("#import-definitions").await;
    let reason = r.reason().split_whitespace().collect::<Vec<_>>().join(" ");
    b.wait_text("#definitions p[role=alert]", &reason).await;
    let _ = std::fs::remove_dir_all(&dir);
    b.close().await;
}

#[tokio::test]
async fn overview_charts_render_after_traffic() {
    let s = server();
    let api = Api::new(&s);
    declare_queue(&api, "chart-q").await;
    let b = Browser::start(&s, "overview").await;
    b.open_as_guest("/").await;
    b.find("#total-queues").await;
    // Traffic until both charts have samples to draw.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        publish(&api, "amq.default", "chart-q", "tick").await;
        let ready = b
            .js("return document.querySelector('#chart-queued')?.dataset.hasData === 'true' && document.querySelector('#chart-rates')?.dataset.hasData === 'true';")
            .await;
        if ready == json!(true) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "charts never got data: {}", b.body_text().await);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let queued = b
        .js("return document.querySelector('#chart-queued polyline[data-series=Total]').getAttribute('points').split(' ').length;")
        .await;
    assert!(queued.as_u64().unwrap() >= 2, "{queued}");
    let publish_points = b
        .js("return document.querySelector('#chart-rates polyline[data-series=Publish]').getAttribute('points').split(' ').length;")
        .await;
    assert!(publish_points.as_u64().unwrap() >= 2, "{publish_points}");
    b.wait_js(
        "totals show the queued messages",
        "+document.querySelector('#total-messages').textContent.replace(/,/g, '') > 0",
    )
    .await;
    b.find("#nodes tbody tr").await;
    b.wait_text("#listeners", "amqp").await;
    b.shot("overview").await;
    b.close().await;
}

#[tokio::test]
async fn a_deep_link_to_a_queue_works_after_login() {
    let s = server();
    let api = Api::new(&s);
    declare_queue(&api, "deep/linked q").await;
    let b = Browser::start(&s, "deeplink").await;
    b.goto(&format!("/queues/%2F/{}", enc("deep/linked q"))).await;
    b.find("#login-form").await;
    b.login("guest", "guest").await;
    b.wait_text("#queue-name", "deep/linked q").await;
    b.wait_text("#q-messages", "0").await;
    // Reload keeps the session (sessionStorage) and the page.
    b.c.refresh().await.unwrap();
    b.wait_text("#queue-name", "deep/linked q").await;
    // A list's filter is part of its URL: a link to a filtered list works,
    // and typing in the filter updates the address.
    b.goto("/exchanges?name=amq.top").await;
    b.wait_js(
        "only amq.topic listed",
        "document.querySelectorAll('#exchanges tbody tr').length === 1 \
         && document.querySelector('#exchanges tbody').textContent.includes('amq.topic')",
    )
    .await;
    assert_eq!(b.find("#exchange-filter").await.prop("value").await.unwrap().as_deref(), Some("amq.top"));
    b.fill("#exchange-filter", "amq.fan").await;
    b.wait_js("the URL follows the filter", "location.search === '?name=amq.fan'").await;
    b.wait_text("#exchanges", "amq.fanout").await;
    b.goto("/connections?page=1").await;
    b.find("#connections").await;
    // An unknown page outside /api is the app's, not a 404 from the server.
    b.goto("/no/such/page").await;
    b.wait_text("main", "No such page.").await;
    b.close().await;
}

#[tokio::test]
async fn markup_in_a_queue_name_and_a_payload_is_shown_as_text() {
    let s = server();
    let api = Api::new(&s);
    let evil = "<img src=x onerror=alert(1)>";
    declare_queue(&api, evil).await;
    publish(&api, "amq.default", evil, evil).await;
    let b = Browser::start(&s, "xss").await;
    b.open_as_guest("/queues").await;
    b.wait_text("#queues", evil).await;
    b.goto(&format!("/queues/%2F/{}", enc(evil))).await;
    b.wait_text("#queue-name", evil).await;
    b.click("#get-submit").await;
    let shown = b.wait_text("#got-messages pre.payload", "onerror").await;
    assert_eq!(shown, evil);
    // Nothing ran (an alert would break every later WebDriver command) and
    // no <img> element was made from the text.
    let imgs = b.js("return document.querySelectorAll('img').length;").await;
    assert_eq!(imgs, json!(0));
    b.shot("xss").await;
    b.close().await;
}

#[tokio::test]
async fn a_tampered_token_logs_out_and_login_returns_to_the_page() {
    let s = server();
    let api = Api::new(&s);
    declare_queue(&api, "tamper-q").await;
    let b = Browser::start(&s, "tamper").await;
    b.open_as_guest("/queues").await;
    b.wait_text("#queues", "tamper-q").await;
    b.js("sessionStorage.setItem('warren.token', sessionStorage.getItem('warren.token').slice(0, -4) + 'AAAA'); return null;").await;
    b.goto("/queues/%2F/tamper-q").await;
    // The API refuses the token: the login form, not a blank page.
    b.find("#login-form").await;
    b.shot("tampered").await;
    b.login("guest", "guest").await;
    b.wait_text("#queue-name", "tamper-q").await;
    b.close().await;
}

#[tokio::test]
async fn connections_and_channels_pages_and_force_close() {
    let s = server();
    let (conn, _ch) = s.channel().await;
    let b = Browser::start(&s, "connections").await;
    b.open_as_guest("/connections").await;
    b.wait_text("#connections", "guest").await;
    b.shot("connections").await;
    b.goto("/channels").await;
    b.wait_text("#channels", "guest").await;
    b.shot("channels").await;
    b.goto("/connections").await;
    b.fill("#close-reason", "closed by the test").await;
    b.click("#connections button.danger").await;
    b.wait_text("main", "Connection closed.").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while conn.status().connected() {
        assert!(std::time::Instant::now() < deadline, "the connection is still open");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    b.close().await;
}

#[tokio::test]
async fn the_shell_has_a_strict_policy_and_hashed_assets() {
    let s = server();
    let resp = reqwest::get(format!("{}/some/deep/link", s.http_url())).await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h.contains_key("referrer-policy"));
    let html = resp.text().await.unwrap();
    assert!(!html.contains("<script>"), "inline script in {html}");
    let boot = html.split("src=\"/assets/").nth(1).and_then(|s| s.split('"').next()).expect("boot script");
    assert!(boot.starts_with("boot-") && boot.ends_with(".js"), "{boot}");
    let a = reqwest::get(format!("{}/assets/{boot}", s.http_url())).await.unwrap();
    assert_eq!(a.status(), 200);
    assert!(a.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    assert!(a.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let missing = reqwest::get(format!("{}/assets/nope.js", s.http_url())).await.unwrap();
    assert_eq!(missing.status(), 404);
    let manifest = reqwest::get(format!("{}/assets/manifest.json", s.http_url())).await.unwrap();
    assert_eq!(manifest.status(), 404);
}
