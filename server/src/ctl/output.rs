//! Output: rabbitmqctl's informational banner ("Listing users ..."), then
//! rows as an aligned table (default), CSV or JSON (`--formatter`).
//! `--quiet` drops the banner, `--silent` also the table header. Machine
//! formats (json, csv) never print the banner.

use std::io::Write;

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

pub struct Out {
    pub format: Format,
    pub quiet: bool,
    pub silent: bool,
}

/// A cell as text: strings bare, lists as `[a, b]`, objects as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            format!("[{}]", a.iter().map(cell).collect::<Vec<_>>().join(", "))
        }
        other => other.to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

impl Out {
    /// The informational line before a result.
    pub fn info(&self, msg: &str) {
        if !self.quiet && !self.silent && self.format == Format::Table {
            println!("{msg}");
        }
    }

    /// A list of rows under the given columns.
    pub fn rows(&self, columns: &[String], rows: &[Vec<Value>]) {
        let mut out = std::io::stdout().lock();
        match self.format {
            Format::Json => {
                let list: Vec<Value> = rows
                    .iter()
                    .map(|r| {
                        Value::Object(columns.iter().cloned().zip(r.iter().cloned()).collect::<Map<_, _>>())
                    })
                    .collect();
                let _ = writeln!(out, "{}", Value::Array(list));
            }
            Format::Csv => {
                if !self.silent {
                    let _ = writeln!(
                        out,
                        "{}",
                        columns.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",")
                    );
                }
                for r in rows {
                    let _ = writeln!(
                        out,
                        "{}",
                        r.iter().map(|v| csv_field(&cell(v))).collect::<Vec<_>>().join(",")
                    );
                }
            }
            Format::Table => {
                let text: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
                let mut widths: Vec<usize> =
                    columns.iter().map(|c| if self.silent { 0 } else { c.chars().count() }).collect();
                for r in &text {
                    for (w, c) in widths.iter_mut().zip(r) {
                        *w = (*w).max(c.chars().count());
                    }
                }
                let line = |cells: Vec<&str>| {
                    let n = cells.len();
                    let mut s = String::new();
                    for (i, c) in cells.into_iter().enumerate() {
                        s.push_str(c);
                        if i + 1 < n {
                            let pad = widths[i] - c.chars().count() + 2;
                            s.extend(std::iter::repeat_n(' ', pad));
                        }
                    }
                    s
                };
                if !self.silent {
                    let _ = writeln!(out, "{}", line(columns.iter().map(String::as_str).collect()));
                }
                for r in &text {
                    let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
                }
            }
        }
    }

    /// One object (status, environment): JSON as is; for a table, the
    /// caller's own text.
    pub fn object(&self, v: &Value, text: impl FnOnce() -> String) {
        match self.format {
            Format::Json => println!("{v}"),
            Format::Csv => {
                if let Value::Object(m) = v {
                    if !self.silent {
                        println!("key,value");
                    }
                    for (k, x) in m {
                        println!("{},{}", csv_field(k), csv_field(&cell(x)));
                    }
                }
            }
            Format::Table => print!("{}", text()),
        }
    }

    /// A closing message ("Ping succeeded"), not printed by --silent.
    pub fn done(&self, msg: &str) {
        if !self.silent && self.format == Format::Table {
            println!("{msg}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_read_like_rabbitmqctl() {
        assert_eq!(cell(&json!(["administrator", "monitoring"])), "[administrator, monitoring]");
        assert_eq!(cell(&json!("q")), "q");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(cell(&json!({"x-max-length": 1})), "{\"x-max-length\":1}");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
