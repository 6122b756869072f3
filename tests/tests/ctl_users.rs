//! warrenctl's user, vhost and permission verbs against a real server,
//! in table and JSON output, and their errors and exit codes.

mod ctl_common;

use ctl_common::{ctl, ctl_stdin, table};
use serde_json::json;
use warren_tests::Server;

#[test]
fn users_are_added_tagged_authenticated_and_deleted() {
    let s = Server::start();
    let out = ctl(&s, &["add_user", "alice", "s3cret"]);
    assert!(out.ok().starts_with("Adding user \"alice\" ..."), "{out:?}");
    ctl(&s, &["add_user", "alice", "x"]).fails(65, "user 'alice' already exists");
    // The password from standard input, as rabbitmqctl reads it.
    ctl_stdin(&s, &["-q", "add_user", "bob"], b"from-stdin\n").ok();
    ctl(&s, &["authenticate_user", "bob", "from-stdin"]).ok();
    ctl(&s, &["authenticate_user", "bob", "wrong"]).fails(65, "failed to authenticate user \"bob\"");

    let out = ctl(&s, &["set_user_tags", "alice", "administrator", "monitoring"]);
    assert!(
        out.ok().contains("Setting tags for user \"alice\" to [administrator, monitoring] ..."),
        "{out:?}"
    );
    let rows = table(ctl(&s, &["-q", "list_users"]).ok());
    assert_eq!(rows[0], ["user", "tags"]);
    assert!(rows.contains(&vec!["alice".to_owned(), "[administrator, monitoring]".to_owned()]), "{rows:?}");
    assert!(rows.contains(&vec!["bob".to_owned(), "[]".to_owned()]), "{rows:?}");
    assert!(rows.contains(&vec!["guest".to_owned(), "[administrator]".to_owned()]), "{rows:?}");
    // --silent drops the header too.
    let silent = table(ctl(&s, &["-s", "list_users"]).ok());
    assert_eq!(silent.len(), rows.len() - 1);

    let users = ctl(&s, &["--formatter", "json", "list_users"]).json();
    assert!(
        users
            .as_array()
            .unwrap()
            .contains(&json!({"user": "alice", "tags": ["administrator", "monitoring"]}))
    );

    // The new admin can use warrenctl with its own credentials.
    ctl(&s, &["change_password", "alice", "n3w"]).ok();
    ctl(&s, &["authenticate_user", "alice", "s3cret"]).fails(65, "failed to authenticate");
    ctl(&s, &["--username", "alice", "--password", "n3w", "list_vhosts"]).ok();
    // Tags survive a password change.
    let alice = ctl(&s, &["--formatter", "json", "list_users"]).json();
    assert!(
        alice
            .as_array()
            .unwrap()
            .contains(&json!({"user": "alice", "tags": ["administrator", "monitoring"]}))
    );
    ctl(&s, &["--username", "alice", "--password", "wrong", "list_users"])
        .fails(77, "authentication as user 'alice' failed");
    // A user without the administrator tag is refused admin verbs.
    ctl(&s, &["--username", "bob", "--password", "from-stdin", "list_users"]).fails(77, "not allowed");

    ctl(&s, &["set_user_tags", "alice"]).ok();
    let csv = ctl(&s, &["--formatter", "csv", "list_users"]).ok().to_owned();
    assert!(csv.lines().next() == Some("user,tags"), "{csv}");
    assert!(csv.lines().any(|l| l == "alice,[]"), "{csv}");

    ctl(&s, &["delete_user", "alice"]).ok();
    ctl(&s, &["delete_user", "alice"]).fails(65, "user 'alice' does not exist");
    ctl(&s, &["change_password", "nobody", "x"]).fails(65, "user 'nobody' does not exist");
    ctl(&s, &["set_user_tags", "nobody", "administrator"]).fails(65, "user 'nobody' does not exist");
}

#[test]
fn vhosts_and_permissions() {
    let s = Server::start();
    ctl(&s, &["add_vhost", "orders", "--description", "the orders", "--default-queue-type", "quorum"]).ok();
    let rows = table(ctl(&s, &["-q", "list_vhosts"]).ok());
    assert_eq!(rows, [vec!["name"], vec!["/"], vec!["orders"]]);
    let v = ctl(&s, &["--formatter", "json", "list_vhosts", "name", "description"]).json();
    assert!(v.as_array().unwrap().contains(&json!({"name": "orders", "description": "the orders"})), "{v}");
    ctl(&s, &["list_vhosts", "colour"]).fails(64, "invalid column 'colour'");

    ctl(&s, &["add_user", "lqz", "123"]).ok();
    let out = ctl(&s, &["set_permissions", "-p", "orders", "lqz", "^lqz-.*", ".*", ".*"]);
    assert!(out.ok().contains("Setting permissions for user \"lqz\" in vhost \"orders\" ..."), "{out:?}");
    let rows = table(ctl(&s, &["-q", "list_permissions", "-p", "orders"]).ok());
    // The creator of a vhost through the API (guest here) gets full permissions on it, as in RabbitMQ.
    assert_eq!(
        rows,
        [
            vec!["user", "configure", "write", "read"],
            vec!["guest", ".*", ".*", ".*"],
            vec!["lqz", "^lqz-.*", ".*", ".*"]
        ]
    );
    let p = ctl(&s, &["--formatter", "json", "list_user_permissions", "lqz"]).json();
    assert_eq!(p, json!([{"vhost": "orders", "configure": "^lqz-.*", "write": ".*", "read": ".*"}]));

    ctl(&s, &["set_topic_permissions", "-p", "orders", "lqz", "amq.topic", "^lqz\\.", "^lqz\\."]).ok();
    let t = ctl(&s, &["--formatter", "json", "list_topic_permissions", "-p", "orders"]).json();
    assert_eq!(t, json!([{"user": "lqz", "exchange": "amq.topic", "write": "^lqz\\.", "read": "^lqz\\."}]));
    // With an exchange, only that exchange's entry goes.
    ctl(&s, &["set_topic_permissions", "-p", "orders", "lqz", "logs", ".*", ".*"]).ok();
    ctl(&s, &["clear_topic_permissions", "-p", "orders", "lqz", "logs"]).ok();
    ctl(&s, &["clear_topic_permissions", "-p", "orders", "lqz", "logs"])
        .fails(65, "user 'lqz' has no topic permissions on 'logs' in virtual host 'orders'");
    let t = ctl(&s, &["--formatter", "json", "list_topic_permissions", "-p", "orders"]).json();
    assert_eq!(t, json!([{"user": "lqz", "exchange": "amq.topic", "write": "^lqz\\.", "read": "^lqz\\."}]));
    ctl(&s, &["clear_topic_permissions", "-p", "orders", "lqz"]).ok();
    assert_eq!(ctl(&s, &["--formatter", "json", "list_topic_permissions", "-p", "orders"]).json(), json!([]));

    ctl(&s, &["clear_permissions", "-p", "orders", "lqz"]).ok();
    assert_eq!(ctl(&s, &["--formatter", "json", "list_user_permissions", "lqz"]).json(), json!([]));
    ctl(&s, &["set_permissions", "-p", "nowhere", "lqz", ".*", ".*", ".*"])
        .fails(65, "virtual host 'nowhere' does not exist");
    ctl(&s, &["set_permissions", "ghost", ".*", ".*", ".*"]).fails(65, "user 'ghost' does not exist");
    ctl(&s, &["set_permissions", "lqz", "(", ".*", ".*"]).fails(65, "");
    ctl(&s, &["list_permissions", "-p", "nowhere"]).fails(65, "virtual host 'nowhere' does not exist");

    ctl(&s, &["delete_vhost", "orders"]).ok();
    ctl(&s, &["delete_vhost", "orders"]).fails(65, "virtual host 'orders' does not exist");
    assert_eq!(ctl(&s, &["--formatter", "json", "list_vhosts"]).json(), json!([{"name": "/"}]));
}

#[test]
fn usage_errors_and_help() {
    let s = Server::start();
    let out = ctl(&s, &["add_user"]);
    assert_eq!(out.code, 64, "{out:?}");
    let out = ctl(&s, &["no_such_verb"]);
    assert_eq!(out.code, 64, "{out:?}");
    let help = ctl(&s, &["--help"]);
    let help = help.ok();
    for verb in [
        "add_user",
        "delete_user",
        "change_password",
        "authenticate_user",
        "set_user_tags",
        "list_users",
        "add_vhost",
        "delete_vhost",
        "list_vhosts",
        "set_permissions",
        "clear_permissions",
        "list_permissions",
        "list_user_permissions",
        "set_topic_permissions",
        "set_policy",
        "clear_policy",
        "list_policies",
        "set_operator_policy",
        "clear_operator_policy",
        "list_operator_policies",
        "set_parameter",
        "clear_parameter",
        "list_parameters",
        "list_queues",
        "list_exchanges",
        "list_bindings",
        "list_connections",
        "list_channels",
        "list_consumers",
        "purge_queue",
        "delete_queue",
        "close_connection",
        "status",
        "environment",
        "cluster_status",
        "stop_app",
        "start_app",
        "reload_certificates",
        "stop",
        "export_definitions",
        "import_definitions",
        "await_startup",
        "ping",
        "completion",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(&format!("{verb} "))),
            "{verb} not in --help:\n{help}"
        );
    }
    let bash = ctl(&s, &["completion", "bash"]);
    assert!(bash.ok().contains("list_queues"), "{bash:?}");
}

/// The node and credentials come from warrenctl's config file when neither
/// a flag nor the environment gives them; a flag still wins; a wrong file
/// is refused with its line named.
#[test]
fn node_and_credentials_from_the_config_file() {
    let s = Server::start();
    assert_eq!(ctl(&s, &["add_user", "filer", "pw1"]).code, 0);
    assert_eq!(ctl(&s, &["set_user_tags", "filer", "administrator"]).code, 0);
    let file = s.data_dir.with_file_name(format!("{}.warrenctl.conf", warren_tests::unique("ctl")));
    std::fs::write(
        &file,
        format!("# ops box\nnode = 127.0.0.1:{}\nusername = filer\npassword = pw1\n", s.http_port),
    )
    .unwrap();
    let run = |args: &[&str], f: &std::path::Path| {
        std::process::Command::new(ctl_common::ctl_bin())
            .args(args)
            .env_remove("WARRENCTL_NODE")
            .env_remove("WARRENCTL_USERNAME")
            .env_remove("WARRENCTL_PASSWORD")
            .env("WARRENCTL_CONFIG_FILE", f)
            .output()
            .unwrap()
    };
    // No -n and no credentials on the command line: all from the file.
    let out = run(&["list_users", "--formatter", "json"], &file);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"filer\""));
    // The file's user is the one logged in: a wrong password there is refused.
    std::fs::write(&file, format!("node = 127.0.0.1:{}\nusername = filer\npassword = wrong\n", s.http_port))
        .unwrap();
    let out = run(&["list_users"], &file);
    assert_eq!(out.status.code(), Some(77), "{out:?}");
    // ... unless a flag gives the password.
    let out = run(&["--password", "pw1", "list_users"], &file);
    assert!(out.status.success(), "{out:?}");
    // A typo in the file stops warrenctl with the line named.
    std::fs::write(&file, "node = x:1\nusrname = filer\n").unwrap();
    let out = run(&["list_users"], &file);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":2: unknown key 'usrname'"), "{err}");
    // A named file that does not exist is an error, not a silent default.
    let out = run(&["list_users"], &file.with_extension("missing"));
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let _ = std::fs::remove_file(&file);
}
