use clap::Parser;

fn main() {
    ensure_runtime_dir();
    iconnet::memory::keep_freed_memory();
    let cli = iconnet::cli::Cli::parse();
    std::process::exit(iconnet::cli::run(cli));
}

/// Graphics drivers complain on every start when `XDG_RUNTIME_DIR` is missing (headless runs,
/// CI): give them a private one.
fn ensure_runtime_dir() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let dir = std::env::temp_dir().join(format!("iconnet-runtime-{user}"));
    #[cfg(unix)]
    let created = {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&dir).is_ok() || dir.is_dir()
    };
    #[cfg(not(unix))]
    let created = std::fs::create_dir(&dir).is_ok() || dir.is_dir();
    if created {
        // SAFETY: called first thing in `main`, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}
