//! Loading an item's image as the URL the endpoint receives: http(s) and data URLs
//! pass through; files become base64 data URLs, after the checks that keep a CSV
//! from reading outside its data folder.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use shadow_core::image::{to_data_url, MAX_IMAGE_BYTES};
use shadow_core::input::{check_relative_path, ImageRef, Item, PathError};

/// Resolves and reads image files relative to the CSV's folder.
#[derive(Clone, Debug)]
pub struct ImageLoader {
    base: Arc<PathBuf>,
    allow_outside: bool,
    /// Folders already resolved (symlinks followed) to inside `base`: a run reads
    /// thousands of files from a few folders, and resolving each path in full costs
    /// a system call per component.
    inside: Arc<Mutex<HashSet<PathBuf>>>,
}

impl ImageLoader {
    /// `base`: the CSV's folder (canonicalized here, so symlink escapes are caught).
    pub fn new(base: &Path, allow_outside: bool) -> std::io::Result<ImageLoader> {
        Ok(ImageLoader {
            base: Arc::new(base.canonicalize()?),
            allow_outside,
            inside: Arc::default(),
        })
    }

    /// The image URL for `item`, or a message naming the line and the file. Files
    /// are read on tokio's blocking pool.
    pub async fn load(&self, item: &Item) -> Result<String, String> {
        let path = match self.file_of(item)? {
            None => return Ok(item.image.as_str().to_string()),
            Some(path) => path,
        };
        let loader = self.clone();
        let shown = item.image.as_str().to_string();
        // One trip to the blocking pool for the whole load.
        let loaded = tokio::task::spawn_blocking(move || loader.read(&path, &shown)).await;
        match loaded {
            Ok(result) => result.map_err(|e| at(item, e)),
            Err(e) => Err(at(item, format!("image loading stopped: {e}"))),
        }
    }

    /// `load`, blocking the calling thread: for callers already off the runtime.
    pub fn load_blocking(&self, item: &Item) -> Result<String, String> {
        match self.file_of(item)? {
            None => Ok(item.image.as_str().to_string()),
            Some(path) => self
                .read(&path, item.image.as_str())
                .map_err(|e| at(item, e)),
        }
    }

    /// The file to read for `item`; `None` when its image is a URL.
    fn file_of(&self, item: &Item) -> Result<Option<PathBuf>, String> {
        Ok(Some(match &item.image {
            ImageRef::Url(_) | ImageRef::DataUrl(_) => return Ok(None),
            ImageRef::RelativePath(p) if self.allow_outside => self.base.join(&**p),
            ImageRef::RelativePath(p) => {
                let clean = check_relative_path(p).map_err(|e| {
                    // The core says what is wrong; the flag that allows it is ours.
                    let step = match e {
                        PathError::EscapesDataDir { .. } | PathError::Absolute { .. } => {
                            " (pass --allow-outside-data-dir to allow it)"
                        }
                        _ => "",
                    };
                    at(item, format!("{e}{step}"))
                })?;
                self.base.join(clean)
            }
            ImageRef::AbsolutePath(p) => PathBuf::from(&**p),
            other => return Err(at(item, format!("unsupported image reference {other:?}"))),
        }))
    }

    fn read(&self, path: &Path, shown: &str) -> Result<String, String> {
        let io = |e: std::io::Error| {
            format!(
                "{shown}: {} (looked for {})",
                describe_io(&e),
                path.display()
            )
        };
        let file = if self.allow_outside {
            File::open(path).map_err(io)?
        } else {
            self.open_inside(path).map_err(|e| match e {
                Escape::Io(e) => io(e),
                Escape::Outside(real) => format!(
                    "{shown} resolves to {}, outside the data folder {}; pass --allow-outside-data-dir to allow it",
                    real.display(),
                    self.base.display()
                ),
            })?
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(format!("{shown} is not a file"));
        }
        if meta.len() > MAX_IMAGE_BYTES as u64 {
            return Err(format!(
                "{shown} is {:.1} MiB, over the {} MiB limit",
                meta.len() as f64 / (1024.0 * 1024.0),
                MAX_IMAGE_BYTES / (1024 * 1024)
            ));
        }
        // Exactly the size just read: `File::read_to_end` would ask the size again
        // and read once more to see the end (two system calls per image).
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        (&file)
            .take(meta.len())
            .read_to_end(&mut bytes)
            .map_err(io)?;
        to_data_url(&bytes).map_err(|e| format!("{shown}: {e}"))
    }

    /// Opens `path` if it resolves to a place inside the data folder: its folder
    /// (cached) and, when the file itself is a symlink, its target. The file is
    /// opened without following a final symlink, which saves asking first.
    fn open_inside(&self, path: &Path) -> Result<File, Escape> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        if !self.inside.lock().expect("not poisoned").contains(dir) {
            let real = dir.canonicalize().map_err(Escape::Io)?;
            if !real.starts_with(&*self.base) {
                return Err(Escape::Outside(
                    real.join(path.file_name().unwrap_or_default()),
                ));
            }
            self.inside
                .lock()
                .expect("not poisoned")
                .insert(dir.to_path_buf());
        }
        match open_no_follow(path) {
            Ok(Some(file)) => Ok(file),
            Ok(None) => {
                let real = path.canonicalize().map_err(Escape::Io)?;
                if !real.starts_with(&*self.base) {
                    return Err(Escape::Outside(real));
                }
                File::open(&real).map_err(Escape::Io)
            }
            Err(e) => Err(Escape::Io(e)),
        }
    }
}

/// The file at `path`, or `None` when `path` is a symlink.
#[cfg(unix)]
fn open_no_follow(path: &Path) -> std::io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    match File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> std::io::Result<Option<File>> {
    if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Ok(None);
    }
    File::open(path).map(Some)
}

enum Escape {
    Io(std::io::Error),
    Outside(PathBuf),
}

fn at(item: &Item, what: String) -> String {
    format!("line {}: {what}", item.line)
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
