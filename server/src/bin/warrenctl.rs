//! `warrenctl`: manage a Warren node with rabbitmqctl's verbs, over the
//! node's management HTTP API. See `warrenctl --help` and the README's
//! "Operating Warren" section.

#[path = "../ctl/mod.rs"]
mod ctl;

fn main() {
    std::process::exit(ctl::main());
}
