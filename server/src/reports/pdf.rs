//! PDF through headless Chromium: the HTML report is written to a temporary file and printed
//! with `--print-to-pdf`. Chromium is a program on the host, not a library, so a missing one is
//! an error that names the Debian package to install.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a print may take before Chromium is stopped.
const PRINT_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, thiserror::Error)]
pub(crate) enum PdfError {
    #[error(
        "PDF output needs Chromium, and {tried} was not found: install the Debian package `chromium` (apt-get install chromium; on Ubuntu `chromium-browser`), or set reports.chromium to a Chromium or Chrome program"
    )]
    ChromiumMissing { tried: String },
    #[error("cannot print the report to PDF with {program}: {reason}")]
    Failed { program: String, reason: String },
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The Chromium program: the configured one, or the first of the usual names on `PATH`.
pub(crate) fn find_chromium(configured: Option<&Path>) -> Result<PathBuf, PdfError> {
    if let Some(program) = configured {
        return if program.is_file() {
            Ok(program.to_path_buf())
        } else {
            find_on_path(&program.to_string_lossy()).ok_or_else(|| PdfError::ChromiumMissing {
                tried: program.display().to_string(),
            })
        };
    }
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .find_map(|name| find_on_path(name))
    .ok_or_else(|| PdfError::ChromiumMissing {
        tried: "chromium (also chromium-browser and google-chrome) on PATH".into(),
    })
}

/// Prints `html` to PDF bytes.
pub(crate) fn html_to_pdf(html: &str, configured: Option<&Path>) -> Result<Vec<u8>, PdfError> {
    let program = find_chromium(configured)?;
    let failed = |reason: String| PdfError::Failed {
        program: program.display().to_string(),
        reason,
    };
    let dir = tempfile::tempdir()
        .map_err(|e| failed(format!("cannot make a temporary directory: {e}")))?;
    let input = dir.path().join("report.html");
    let output = dir.path().join("report.pdf");
    std::fs::write(&input, html)
        .map_err(|e| failed(format!("cannot write {}: {e}", input.display())))?;
    let log_path = dir.path().join("chromium.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| failed(format!("cannot create {}: {e}", log_path.display())))?;
    let mut child = Command::new(&program)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--print-to-pdf={}", output.display()))
        .arg(format!("file://{}", input.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // A file, not a pipe: a chatty Chromium must never block on a full pipe.
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PdfError::ChromiumMissing {
                tried: program.display().to_string(),
            },
            _ => failed(format!("cannot start it: {e}")),
        })?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > PRINT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "it did not finish within {} s",
                    PRINT_TIMEOUT.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(failed(format!("cannot wait for it: {e}"))),
        }
    };
    let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
    let bytes = std::fs::read(&output).map_err(|e| {
        failed(format!(
            "it exited with {status} and wrote no PDF ({e}); its last words: {}",
            stderr.lines().rev().take(3).collect::<Vec<_>>().join(" / ")
        ))
    })?;
    if !bytes.starts_with(b"%PDF") {
        return Err(failed("the file it wrote is not a PDF".into()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_chromium_names_the_package_to_install() {
        let error =
            find_chromium(Some(Path::new("/nonexistent/chromium-for-tally-test"))).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("apt-get install chromium"), "{text}");
        assert!(
            text.contains("/nonexistent/chromium-for-tally-test"),
            "{text}"
        );
    }
}
