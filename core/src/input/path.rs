//! Image paths of the CSV, checked against the data folder they are relative to.

/// Why an image path was refused by [`check_relative_path`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is empty (or names the data folder itself, like `a/..`).
    #[error("the image path is empty; put a file name in the image column")]
    Empty,
    /// The path climbs above the data folder with `..`.
    #[error(
        "image path {path:?} points outside the data folder; \
         such paths are refused unless outside paths are allowed"
    )]
    EscapesDataDir {
        /// The path as the CSV wrote it.
        path: String,
    },
    /// The path is absolute (`/x`, `\x`, `C:\x`, `C:x`), not relative to the data
    /// folder.
    #[error(
        "image path {path:?} is absolute, not relative to the data folder; \
         such paths are refused unless outside paths are allowed"
    )]
    Absolute {
        /// The path as the CSV wrote it.
        path: String,
    },
}

/// Lexically checks a [`ImageRef::RelativePath`](super::ImageRef::RelativePath) and returns it normalised: `\` turned
/// into `/`, empty and `.` components dropped, `..` resolved.
///
/// `images/./a/../b.png` gives `images/b.png`. Symbolic links are not looked at
/// (that is the host's job, which has the file system).
///
/// # Errors
///
/// [`PathError::Empty`] when nothing is left, [`PathError::EscapesDataDir`] when a `..`
/// would climb above the data folder, [`PathError::Absolute`] for a path starting
/// with `/` or `\` or a drive letter (`C:`).
pub fn check_relative_path(path: &str) -> Result<String, PathError> {
    let b = path.as_bytes();
    if path.starts_with('/')
        || path.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
    {
        return Err(PathError::Absolute {
            path: path.to_owned(),
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::EscapesDataDir {
                        path: path.to_owned(),
                    });
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(PathError::Empty);
    }
    Ok(parts.join("/"))
}
