//! Recently opened files, kept in `$XDG_CONFIG_HOME/iconnet/recent.txt` (or `~/.config`).

use std::path::{Path, PathBuf};

const MAX_RECENT: usize = 10;

fn store() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("iconnet").join("recent.txt"))
}

/// The list, newest first; missing files are dropped.
pub fn load() -> Vec<PathBuf> {
    let Some(path) = store() else { return Vec::new() };
    std::fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .map(PathBuf::from)
                .filter(|p| p.exists())
                .take(MAX_RECENT)
                .collect()
        })
        .unwrap_or_default()
}

/// Moves `path` to the front and saves the list (best effort: a read-only home is not an error).
pub fn add(list: &mut Vec<PathBuf>, path: &Path) {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    list.retain(|p| p != &path);
    list.insert(0, path);
    list.truncate(MAX_RECENT);
    if let Some(file) = store() {
        let text: String = list.iter().map(|p| format!("{}\n", p.display())).collect();
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(file, text);
    }
}
