//! Golden files: compare what a test rendered with a committed file and, on a mismatch, report a
//! unified diff per file (not just its name). `UPDATE_GOLDEN=1` rewrites the files instead, for
//! goldens the test itself owns; generated files name the command that regenerates them.

use std::path::Path;

/// Lines of diff shown per file; the rest is summarised (a golden can be thousands of lines).
const MAX_DIFF_LINES: usize = 120;

pub struct Goldens {
    hint: String,
    update: bool,
    failures: Vec<String>,
}

impl Goldens {
    /// Goldens this test writes under `UPDATE_GOLDEN=1`; `hint` is the command that does it.
    pub fn updatable(hint: &str) -> Goldens {
        Goldens {
            hint: hint.to_string(),
            update: std::env::var_os("UPDATE_GOLDEN").is_some(),
            failures: Vec::new(),
        }
    }

    /// Files another command generates (`hint`); never rewritten by the test.
    pub fn generated(hint: &str) -> Goldens {
        Goldens {
            hint: hint.to_string(),
            update: false,
            failures: Vec::new(),
        }
    }

    /// Compare `actual` with the file at `path` (a missing file is empty); records a diff, or
    /// rewrites the file in update mode.
    pub fn check(&mut self, path: &Path, actual: &str) {
        if self.update {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).unwrap();
            }
            std::fs::write(path, actual).unwrap();
            return;
        }
        let want = std::fs::read_to_string(path).unwrap_or_default();
        if want == actual {
            return;
        }
        let name = path.display().to_string();
        let diff = similar::TextDiff::from_lines(want.as_str(), actual)
            .unified_diff()
            .context_radius(3)
            .header(&name, "rendered")
            .to_string();
        let lines: Vec<&str> = diff.lines().collect();
        let mut shown = lines[..lines.len().min(MAX_DIFF_LINES)].join("\n");
        if lines.len() > MAX_DIFF_LINES {
            shown.push_str(&format!(
                "\n... {} more diff lines",
                lines.len() - MAX_DIFF_LINES
            ));
        }
        self.failures.push(shown);
    }

    /// Panics with every recorded diff.
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} golden file(s) differ ({}):\n{}",
            self.failures.len(),
            self.hint,
            self.failures.join("\n")
        );
    }
}
