fn main() {
    // `sqlx::migrate!` embeds migrations/ at build time; rebuild when it changes.
    println!("cargo:rerun-if-changed=../migrations");
}
