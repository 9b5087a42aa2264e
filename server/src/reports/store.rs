//! Custom reports stored through the API: one JSON file per report under
//! `<data-dir>/reports/`, written atomically (a temporary file, fsync, rename, fsync of the
//! directory), so a crash leaves the old definition or the new one, never half of one.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::model::ReportDefinition;

pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens the directory, creating it, and reads every stored definition. A file that does
    /// not parse is reported with its path and left alone.
    pub(crate) fn open(dir: &Path) -> Result<(Store, BTreeMap<String, ReportDefinition>), String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the reports directory {}: {e}", dir.display()))?;
        let mut definitions = BTreeMap::new();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read the reports directory {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let definition: ReportDefinition = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{}: not a report definition: {e} (line {}, column {}); fix or remove the file",
                    path.display(),
                    e.line(),
                    e.column()
                )
            })?;
            definitions.insert(definition.name.clone(), definition);
        }
        Ok((
            Store {
                dir: dir.to_path_buf(),
            },
            definitions,
        ))
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    pub(crate) fn save(&self, definition: &ReportDefinition) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(definition)
            .map_err(|e| format!("cannot encode report {:?}: {e}", definition.name))?;
        write_atomically(&self.path_of(&definition.name), &bytes)
    }

    pub(crate) fn remove(&self, name: &str) -> Result<(), String> {
        let path = self.path_of(name);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync the directory {}: {e}", dir.display()))
}

/// Writes `bytes` to `path` so that readers see the old file or the whole new one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", path.display()))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&temporary);
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_reports_survive_a_reopen_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let (store, loaded) = Store::open(dir.path()).unwrap();
        assert!(loaded.is_empty());
        let text = "[[report]]\nname = \"mine\"\ntitle = \"Mine\"\n[[report.sections]]\ntype = \"title\"\ntext = \"Hi\"\n";
        let definition = super::super::model::parse_report_file(text)
            .unwrap()
            .remove(0);
        store.save(&definition).unwrap();
        let (_, loaded) = Store::open(dir.path()).unwrap();
        assert_eq!(loaded.get("mine"), Some(&definition));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["mine.json"]);
        store.remove("mine").unwrap();
        let (_, loaded) = Store::open(dir.path()).unwrap();
        assert!(loaded.is_empty());
    }
}
