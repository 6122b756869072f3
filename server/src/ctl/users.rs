//! `add_user`, `delete_user`, `change_password`, `authenticate_user`,
//! `set_user_tags`, `list_users`.

use std::io::BufRead;

use serde_json::{Value, json};
use warren_api_types::objects::User;

use super::client::seg;
use super::lists::{Row, table};
use super::{CtlError, Ctx, R};

fn user_path(name: &str) -> String {
    format!("/api/users/{}", seg(name))
}

fn missing(name: &str) -> CtlError {
    CtlError::data(format!("user '{name}' does not exist"))
}

fn require_user(c: &Ctx, name: &str) -> R<()> {
    if c.client.exists(&user_path(name))? { Ok(()) } else { Err(missing(name)) }
}

pub fn add(c: &Ctx, name: &str, password: Option<String>) -> R<()> {
    let password = match password {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| CtlError::data(format!("cannot read the password from standard input: {e}")))?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    if name.is_empty() {
        return Err(CtlError::data("user name must not be empty"));
    }
    c.out.info(&format!("Adding user \"{name}\" ..."));
    if c.client.exists(&user_path(name))? {
        return Err(CtlError::data(format!("user '{name}' already exists")));
    }
    c.client.put(&user_path(name), &json!({"password": password, "tags": ""}))?;
    c.out.info(
        "Done. Don't forget to grant the user permissions to some virtual hosts! See 'warrenctl set_permissions --help' to learn more.",
    );
    Ok(())
}

pub fn delete(c: &Ctx, name: &str) -> R<()> {
    c.out.info(&format!("Deleting user \"{name}\" ..."));
    c.client.delete(&user_path(name), || format!("user '{name}' does not exist"))
}

pub fn change_password(c: &Ctx, name: &str, password: &str) -> R<()> {
    c.out.info(&format!("Changing password for user \"{name}\" ..."));
    require_user(c, name)?;
    c.client.put(&user_path(name), &json!({"password": password}))
}

pub fn authenticate(c: &Ctx, name: &str, password: &str) -> R<()> {
    c.out.info(&format!("Authenticating user \"{name}\" ..."));
    let answer: Value =
        c.client.post_read("/api/node/authenticate", &json!({"username": name, "password": password}))?;
    if answer.get("authenticated").and_then(Value::as_bool) == Some(true) {
        c.out.done("Success");
        Ok(())
    } else {
        Err(CtlError::data(format!("failed to authenticate user \"{name}\"")))
    }
}

pub fn set_tags(c: &Ctx, name: &str, tags: &[String]) -> R<()> {
    // rabbitmqctl takes tags as separate words; a comma list works too.
    let tags: Vec<String> = tags
        .iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    c.out.info(&format!("Setting tags for user \"{name}\" to [{}] ...", tags.join(", ")));
    require_user(c, name)?;
    c.client.put(&user_path(name), &json!({"tags": tags}))
}

impl Row for User {
    const COLUMNS: &'static [&'static str] = &["user", "tags", "hashing_algorithm", "limits"];
    fn cell(&self, column: &str) -> Value {
        match column {
            "user" => self.name.as_str().into(),
            "tags" => self.tags.clone().into(),
            "hashing_algorithm" => self.hashing_algorithm.as_str().into(),
            "limits" => Value::Object(self.limits.clone()),
            _ => Value::Null,
        }
    }
}

pub fn list(c: &Ctx, columns: &[String]) -> R<()> {
    let items: Vec<User> = c.client.get("/api/users")?;
    c.out.info("Listing users ...");
    table(c, &items, columns, &["user", "tags"])
}
