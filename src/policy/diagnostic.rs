//! Messages about a rule file, each at `file:line:column`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
}

/// One message about a place in a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based; 0 when the message is about the whole file.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub level: Level,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        if self.line == 0 {
            write!(f, "{}: {level}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {level}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// A rule file's text, to turn byte spans into lines and columns.
pub(super) struct SourceFile<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    /// Byte offset of each line's start, made at the first message: a pack
    /// with many messages is not scanned from the start for each.
    line_starts: std::cell::OnceCell<Vec<usize>>,
}

impl<'a> SourceFile<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        Self { path, text, line_starts: std::cell::OnceCell::new() }
    }

    pub fn at(&self, span: Range<usize>, level: Level, message: String) -> Diagnostic {
        let start = span.start.min(self.text.len());
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0).chain(self.text.match_indices('\n').map(|(i, _)| i + 1)).collect()
        });
        // The last line starting at or before `start`.
        let line = starts.partition_point(|&s| s <= start);
        let line_start = starts[line - 1];
        // Spans from the parser fall on character boundaries; be safe anyway.
        let column = self.text.get(line_start..start).map_or(0, |s| s.chars().count());
        Diagnostic { path: self.path.to_owned(), line, column: column + 1, level, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based() {
        let src = SourceFile::new(Path::new("r.toml"), "a = 1\nbé = 2\n");
        let d = src.at(10..11, Level::Error, "x".into());
        assert_eq!(d.to_string(), "r.toml:2:4: error: x");
        let d = src.at(0..1, Level::Warning, "y".into());
        assert_eq!(d.to_string(), "r.toml:1:1: warning: y");
        // At a line's end, past the text, in an empty text.
        assert_eq!(src.at(5..6, Level::Error, "z".into()).to_string(), "r.toml:1:6: error: z");
        assert_eq!(src.at(99..99, Level::Error, "e".into()).to_string(), "r.toml:3:1: error: e");
        let empty = SourceFile::new(Path::new("e.toml"), "");
        assert_eq!(empty.at(0..0, Level::Error, "x".into()).to_string(), "e.toml:1:1: error: x");
    }
}
