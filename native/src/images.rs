//! Loading an item's image as the URL the endpoint receives: http(s) and data URLs
//! pass through; files become base64 data URLs, after the checks that keep a CSV
//! from reading outside its data folder.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use shadow_core::image::{to_data_url, MAX_IMAGE_BYTES};
use shadow_core::input::{check_relative_path, ImageRef, Item};

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

    /// The image URL for `item`, or a message naming the line and the file.
    pub async fn load(&self, item: &Item) -> Result<String, String> {
        let path = match &item.image {
            ImageRef::Url(url) | ImageRef::DataUrl(url) => return Ok(url.to_string()),
            ImageRef::RelativePath(p) if self.allow_outside => self.base.join(&**p),
            ImageRef::RelativePath(p) => {
                let clean = check_relative_path(p).map_err(|e| at(item, e.to_string()))?;
                self.base.join(clean)
            }
            ImageRef::AbsolutePath(p) => PathBuf::from(&**p),
            other => return Err(at(item, format!("unsupported image reference {other:?}"))),
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

    fn read(&self, path: &Path, shown: &str) -> Result<String, String> {
        let io = |e: std::io::Error| {
            format!(
                "{shown}: {} (looked for {})",
                describe_io(&e),
                path.display()
            )
        };
        if !self.allow_outside {
            self.check_inside(path).map_err(|e| match e {
                Escape::Io(e) => io(e),
                Escape::Outside(real) => format!(
                    "{shown} resolves to {}, outside the data folder {}; pass --allow-outside-data-dir to allow it",
                    real.display(),
                    self.base.display()
                ),
            })?;
        }
        let mut file = File::open(path).map_err(io)?;
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
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes).map_err(io)?;
        to_data_url(&bytes).map_err(|e| format!("{shown}: {e}"))
    }

    /// The file must resolve to a place inside the data folder: its folder (cached)
    /// and, when the file itself is a symlink, its target.
    fn check_inside(&self, path: &Path) -> Result<(), Escape> {
        let link = std::fs::symlink_metadata(path).map_err(Escape::Io)?;
        if link.file_type().is_symlink() {
            let real = path.canonicalize().map_err(Escape::Io)?;
            return if real.starts_with(&*self.base) {
                Ok(())
            } else {
                Err(Escape::Outside(real))
            };
        }
        let dir = path.parent().unwrap_or(Path::new("/"));
        if self.inside.lock().expect("not poisoned").contains(dir) {
            return Ok(());
        }
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
        Ok(())
    }
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
