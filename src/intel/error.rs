use std::io;
use std::path::{Path, PathBuf};

/// Why intelligence data could not be loaded, built or updated. Every
/// variant names the file (or URL) and, where there is one, the place.
#[derive(Debug, thiserror::Error)]
pub enum IntelError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    #[error("{}: not a usable database: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },

    #[error("{}: {message}", path.display())]
    WrongKind { path: PathBuf, message: String },

    #[error("{}:{line}: {message}", path.display())]
    Syntax { path: PathBuf, line: usize, message: String },

    /// A TOML file (overlay, catalogue, configuration), placed as rule
    /// packs are: `file:line:column: message`.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Toml { path: PathBuf, line: usize, column: usize, message: String },

    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },

    #[error("{url}: {message}")]
    Download { url: String, message: String },

    #[error("feed {feed}: {message}")]
    Feed { feed: String, message: String },
}

impl IntelError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        IntelError::Io { path: path.to_owned(), source }
    }

    pub(crate) fn corrupt(path: &Path, message: String) -> Self {
        IntelError::Corrupt { path: path.to_owned(), message }
    }

    pub(crate) fn invalid(path: &Path, message: String) -> Self {
        IntelError::Invalid { path: path.to_owned(), message }
    }

    /// A TOML error with its line and column.
    pub fn toml(path: &Path, text: &str, err: toml::de::Error) -> Self {
        let (line, column) = err
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
            })
            .unwrap_or((0, 0));
        IntelError::Toml {
            path: path.to_owned(),
            line,
            column,
            message: err.message().trim_end().to_owned(),
        }
    }
}
